"""A stand-in for the part of torchvision that diffusers' DreamBooth script uses (README.md)."""
