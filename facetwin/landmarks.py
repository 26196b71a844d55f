"""MediaPipe's face-mesh topology, which the twin's skin shares: the twin's ground-truth
landmarks and what MediaPipe finds on a camera image are the same points."""

N_SKIN = 468  # surface points: the twin's skin vertices
N_LANDMARKS = 478  # with the refined irises
# Each iris: a centre, then 4 rim points (+x, +y, -x, -y in the face frame).
IRIS_START = {"right": 468, "left": 473}
