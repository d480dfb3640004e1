"""MuJoCo pick-and-place tasks built with dm_control, and a scripted expert."""
