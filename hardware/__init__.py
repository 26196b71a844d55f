"""Servo-bus drivers, calibration and cameras (later issues); never imports MuJoCo."""
