"""Biventricular anatomies: voxel hearts with coordinates, fibres, points and electrodes."""
