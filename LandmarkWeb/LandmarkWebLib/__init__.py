"""A browser front end (trame-slicer) on the modules' own Logic classes; one MRML scene per browser tab."""
