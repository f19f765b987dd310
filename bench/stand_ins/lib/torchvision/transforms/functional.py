"""torchvision.transforms.functional.crop on PIL images."""


def crop(img, top: int, left: int, height: int, width: int):
    return img.crop((left, top, left + width, top + height))
