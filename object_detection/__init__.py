"""object_detection: Mask R-CNN and RetinaNet on COCO (training and LoadGen inference). Not built yet."""
