"""Robot profiles and the face asset, and the script that makes the asset."""
