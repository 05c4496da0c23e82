"""The image catalogue: the template of every image, the defaults, entries and image selection."""
