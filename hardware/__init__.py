"""Servo-bus drivers, servo register tables, calibration, cameras, the journal and the
virtual servo bus; never imports MuJoCo."""
