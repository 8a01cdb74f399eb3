"""The Ganeti side of osdef: environment model, OS parameters, scripts, OS-dir installer."""
