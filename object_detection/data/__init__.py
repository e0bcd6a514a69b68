"""COCO 2017 (and, for RetinaNet, the MLPerf OpenImages subset) for the object detection benchmark.

On-disk layout (the real set; the embedded mini set has the same, plus a manifest.json)::

    <root>/train2017/*.jpg                               118,287 images
    <root>/val2017/*.jpg                                 5,000 images
    <root>/annotations/instances_{train,val}2017.json    COCO instances, with masks
    <root>/archives/*.zip                                the downloaded archives (kept unless --delete-archives)
    <root>/pretrained/resnet50-0676ba61.pth              torchvision's ImageNet ResNet-50, Mask R-CNN's start

RetinaNet's MLPerf OpenImages subset: ``<root>/validation/data/<ImageID>.jpg`` (24,781 images) and
``<root>/annotations/openimages-mlperf.json`` beside the OpenImages CSVs it is made from.

``layout``: this folder's manifests (coco_files.json, openimages_files.json); ``cli``: ``download`` and ``verify``
(the shared ``loadgen.data.coco_cli`` command) and ``download-openimages`` and ``verify-openimages``, behind
download_dataset.sh and verify_dataset.sh; ``openimages``: the subset's classes and its annotation file;
``openimages_files``: fetching and verifying the subset; ``training``: the datasets Mask R-CNN trains and evaluates
on (imports torch). Importing this package imports neither ``training`` nor torch.
"""

from object_detection.data.layout import FILES_MANIFEST

__all__ = ["FILES_MANIFEST"]
