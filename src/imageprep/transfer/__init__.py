"""The copy engine and the image-store interface it is written against."""
