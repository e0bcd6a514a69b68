"""COCO 2017 (and, for RetinaNet, the MLPerf OpenImages subset) for the object detection benchmark.

``training``: the datasets Mask R-CNN trains and evaluates on, read from a COCO 2017 folder (the real one or the
embedded mini set) with the shared ``loadgen.data.coco`` helpers.
"""
