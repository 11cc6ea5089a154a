"""What a student waits for when moving an explorer's slider: in the kernel, and in JupyterLab."""
