"""Values shared by every layer: references, descriptors, manifests and errors. No I/O here."""
