"""Live mimicry: a person's face (webcam, video, picture) drives the robot's, frame by
frame."""
