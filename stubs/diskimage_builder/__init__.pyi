# diskimage-builder has no type information; osdef only reads the package's __file__ (its elements dir).
