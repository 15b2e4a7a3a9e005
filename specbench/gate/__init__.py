"""The CI regression gate: compare two run directories (or a run and a baseline file).

``inputs`` loads and checks what is compared, ``stats`` holds the significance tests,
``compare`` decides pass/fail per configuration and ``output`` writes the console,
JUnit and Markdown forms. It reads run directories and never writes a trial.
"""
