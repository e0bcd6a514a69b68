"""The MLPerf OpenImages subset RetinaNet is benchmarked on: its 264 classes, its on-disk layout, and the one
function that writes its COCO-style ``openimages-mlperf.json``.

The subset is OpenImages v6's validation images that hold a box of one of the 264 classes the inference reference
lists (``tools/openimages_mlperf.sh``), 24,781 images. Its annotation file is COCO's instances format, as the
reference's ``openimages.py`` exports it and its ``accuracy-openimages.py`` reads it:

- categories: ``id`` i for the i-th class of :data:`CLASSES` (0..263, the model's label is the category id);
- images: those with a box of the classes, ordered by OpenImages ``ImageID``, ``id`` 1, 2, ...; ``file_name``
  ``<ImageID>.jpg`` under ``validation/data/``;
- annotations: each box of those classes, ``bbox`` [x, y, w, h] in pixels, ``area`` w x h, ``iscrowd`` the box's
  ``IsGroupOf``, and OpenImages' five flags as they are.

Layout::

    <root>/validation/data/<ImageID>.jpg          24,781 images
    <root>/annotations/openimages-mlperf.json     the file above
    <root>/annotations/*.csv                      the downloaded OpenImages sources
    <root>/train/data/*.jpg, <root>/train/labels/openimages-mlperf.json
                                                  training's split, where the training reference's download puts it

Standard library only: the download tool, the mini set builder and accuracy all use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

# The inference reference's MLPERF_CLASSES (tools/openimages_mlperf.sh), OpenImages display names, in its order
# (alphabetical); the position is the category id.
CLASSES = (
    "Airplane", "Antelope", "Apple", "Backpack", "Balloon", "Banana", "Barrel", "Baseball bat", "Baseball glove",
    "Bee", "Beer", "Bench", "Bicycle", "Bicycle helmet", "Bicycle wheel", "Billboard", "Book", "Bookcase", "Boot",
    "Bottle", "Bowl", "Bowling equipment", "Box", "Boy", "Brassiere", "Bread", "Broccoli", "Bronze sculpture",
    "Bull", "Bus", "Bust", "Butterfly", "Cabinetry", "Cake", "Camel", "Camera", "Candle", "Candy", "Cannon",
    "Canoe", "Carrot", "Cart", "Castle", "Cat", "Cattle", "Cello", "Chair", "Cheese", "Chest of drawers", "Chicken",
    "Christmas tree", "Coat", "Cocktail", "Coffee", "Coffee cup", "Coffee table", "Coin", "Common sunflower",
    "Computer keyboard", "Computer monitor", "Convenience store", "Cookie", "Countertop", "Cowboy hat", "Crab",
    "Crocodile", "Cucumber", "Cupboard", "Curtain", "Deer", "Desk", "Dinosaur", "Dog", "Doll", "Dolphin", "Door",
    "Dragonfly", "Drawer", "Dress", "Drum", "Duck", "Eagle", "Earrings", "Egg (Food)", "Elephant", "Falcon",
    "Fedora", "Flag", "Flowerpot", "Football", "Football helmet", "Fork", "Fountain", "French fries", "French horn",
    "Frog", "Giraffe", "Girl", "Glasses", "Goat", "Goggles", "Goldfish", "Gondola", "Goose", "Grape", "Grapefruit",
    "Guitar", "Hamburger", "Handbag", "Harbor seal", "Headphones", "Helicopter", "High heels", "Hiking equipment",
    "Horse", "House", "Houseplant", "Human arm", "Human beard", "Human body", "Human ear", "Human eye",
    "Human face", "Human foot", "Human hair", "Human hand", "Human head", "Human leg", "Human mouth", "Human nose",
    "Ice cream", "Jacket", "Jeans", "Jellyfish", "Juice", "Kitchen & dining room table", "Kite", "Lamp", "Lantern",
    "Laptop", "Lavender (Plant)", "Lemon", "Light bulb", "Lighthouse", "Lily", "Lion", "Lipstick", "Lizard", "Man",
    "Maple", "Microphone", "Mirror", "Mixing bowl", "Mobile phone", "Monkey", "Motorcycle", "Muffin", "Mug", "Mule",
    "Mushroom", "Musical keyboard", "Necklace", "Nightstand", "Office building", "Orange", "Owl", "Oyster",
    "Paddle", "Palm tree", "Parachute", "Parrot", "Pen", "Penguin", "Personal flotation device", "Piano",
    "Picture frame", "Pig", "Pillow", "Pizza", "Plate", "Platter", "Porch", "Poster", "Pumpkin", "Rabbit", "Rifle",
    "Roller skates", "Rose", "Salad", "Sandal", "Saucer", "Saxophone", "Scarf", "Sea lion", "Sea turtle", "Sheep",
    "Shelf", "Shirt", "Shorts", "Shrimp", "Sink", "Skateboard", "Ski", "Skull", "Skyscraper", "Snake", "Sock",
    "Sofa bed", "Sparrow", "Spider", "Spoon", "Sports uniform", "Squirrel", "Stairs", "Stool", "Strawberry",
    "Street light", "Studio couch", "Suit", "Sun hat", "Sunglasses", "Surfboard", "Sushi", "Swan", "Swimming pool",
    "Swimwear", "Tank", "Tap", "Taxi", "Tea", "Teddy bear", "Television", "Tent", "Tie", "Tiger", "Tin can", "Tire",
    "Toilet", "Tomato", "Tortoise", "Tower", "Traffic light", "Train", "Tripod", "Truck", "Trumpet", "Umbrella",
    "Van", "Vase", "Vehicle registration plate", "Violin", "Wall clock", "Waste container", "Watch", "Whale",
    "Wheel", "Wheelchair", "Whiteboard", "Window", "Wine", "Wine glass", "Woman", "Zebra", "Zucchini",
)

ANNOTATIONS = Path("annotations") / "openimages-mlperf.json"
VALIDATION_IMAGES = Path("validation") / "data"
VALIDATION_COUNT = 24_781  # images in the subset (the inference submission checker's dataset size for retinanet)
FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")  # OpenImages' per-box flags


@dataclasses.dataclass(frozen=True)
class Box:
    """One OpenImages box annotation: the image, the class's display name, corners as fractions of the image's
    width and height, and the five flags (0, 1, or -1 where OpenImages does not know)."""
    image: str  # ImageID, 16 hex digits
    label: str  # display name
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    flags: Mapping[str, int] = dataclasses.field(default_factory=dict)


def annotation_file(root: str | Path, split: str = "validation") -> Path:
    """The subset's annotation file; for the train split, where the training reference's download puts it."""
    return Path(root) / (ANNOTATIONS if split == "validation" else Path(split) / "labels" / ANNOTATIONS.name)


def image_folder(root: str | Path, split: str = "validation") -> Path:
    return Path(root) / split / "data"


def subset_json(sizes: Mapping[str, tuple[int, int]], boxes: Iterable[Box], classes: tuple[str, ...] = CLASSES,
                description: str = "openimages_mlperf") -> dict:
    """The subset's annotation file (see the module docstring) from the boxes of ``classes`` on the images of
    ``sizes`` (``{ImageID: (width, height)}``, the images that are there); boxes of other classes or images are
    left out, and so are images left without a box."""
    category = {name: i for i, name in enumerate(classes)}
    kept = sorted((b for b in boxes if b.label in category and b.image in sizes), key=lambda b: b.image)
    image_ids: dict[str, int] = {}
    for box in kept:
        image_ids.setdefault(box.image, len(image_ids) + 1)
    images = [{"id": i, "file_name": f"{name}.jpg", "width": sizes[name][0], "height": sizes[name][1],
               "license": None, "coco_url": None} for name, i in image_ids.items()]
    annotations = []
    for n, box in enumerate(kept, 1):
        width, height = sizes[box.image]
        bbox = [box.xmin * width, box.ymin * height, (box.xmax - box.xmin) * width, (box.ymax - box.ymin) * height]
        flags = {f: int(box.flags.get(f, 0)) for f in FLAGS}
        annotations.append({"id": n, "image_id": image_ids[box.image], "category_id": category[box.label],
                            "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": max(flags["IsGroupOf"], 0),
                            **flags})
    return {"info": {"dataset": description, "version": "v6"}, "licenses": [],
            "categories": [{"id": i, "name": name, "supercategory": None} for i, name in enumerate(classes)],
            "images": images, "annotations": annotations}
