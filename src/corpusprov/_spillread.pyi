"""Types of aggregate's native spill read (src/corpusprov/_spillread.c); see corpusprov.stages.aggregate."""

from array import array

def gather(
    fd: int, offsets: array[int], lengths: array[int], picks: array[int], start: int, max_bytes: int, /
) -> tuple[bytes, int]: ...
