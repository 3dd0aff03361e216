"""Package data: the humanoid jogging mocap reference (see ``PROVENANCE.md``)."""
