"""A class skops does not trust, for the artifact tests."""


class Gadget:
    def __init__(self) -> None:
        self.armed = True
