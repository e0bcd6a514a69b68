"""image_classification: ResNet-50 v1.5 and MobileNet-v1 on ImageNet (training to top-1 and LoadGen inference)."""
