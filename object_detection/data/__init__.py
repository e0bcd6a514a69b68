"""COCO 2017 (and, for RetinaNet, the MLPerf OpenImages subset) for the object detection benchmark.

On-disk layout (the real set; the embedded mini set has the same, plus a manifest.json)::

    <root>/train2017/*.jpg                               118,287 images
    <root>/val2017/*.jpg                                 5,000 images
    <root>/annotations/instances_{train,val}2017.json    COCO instances, with masks
    <root>/archives/*.zip                                the downloaded archives (kept unless --delete-archives)
    <root>/pretrained/resnet50-0676ba61.pth              torchvision's ImageNet ResNet-50, Mask R-CNN's start

``layout``: this folder's manifest (coco_files.json); ``cli``: ``download`` and ``verify``, behind
download_dataset.sh and verify_dataset.sh, the shared ``loadgen.data.coco_cli`` command; ``training``: the datasets
Mask R-CNN trains and evaluates on (imports torch). Importing this package imports neither ``training`` nor torch.
"""

from object_detection.data.layout import FILES_MANIFEST

__all__ = ["FILES_MANIFEST"]
