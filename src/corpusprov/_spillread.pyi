"""Types of aggregate's native spill read (src/corpusprov/_spillread.c); see corpusprov.stages.aggregate."""

from array import array

def gather(
    fd: int, offsets: array[int], lengths: array[int], picks: list[bytes], start: int, max_bytes: int, /
) -> tuple[bytes, int]: ...
