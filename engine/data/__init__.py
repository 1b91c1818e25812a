"""Images in: decoding, splits, crops and tiles, degradations, the reference pool of real photos."""
