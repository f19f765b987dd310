"""Images from images (#29), one module per part:

- `canvas`: the init image, mask, extended canvas and crop, checked and laid out; the paste
  back that keeps every pixel outside the mask (PIL and numpy only).
- `plan`: a request made into passes (from an image, then the hires fix), sizes checked.
- `passes`: the passes run on the loaded model's own components (torch).
"""
