"""single_stage_detector: SSD-ResNet34 and SSD-MobileNet-v1 on COCO (training and LoadGen inference). In progress."""
