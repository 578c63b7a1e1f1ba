"""ISO 8601 dates and times that exist (TND Format date and time), not only ones that look
right: 2024-13-45 and 25:61:61 are refused. Loaded on first use by agent.formats.
"""

def _digits(text, pattern):
    """text matches pattern, where 'd' is any digit and other characters stand for themselves."""
    if len(text) != len(pattern):
        return False
    for i in range(len(text)):
        if pattern[i] == "d":
            if not "0" <= text[i] <= "9":
                return False
        elif text[i] != pattern[i]:
            return False
    return True


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_date(text):
    """ISO 8601 calendar date, extended or basic, that exists: 2024-05-31, 20240531."""
    if _digits(text, "dddd-dd-dd"):
        text = text[:4] + text[5:7] + text[8:]
    elif not _digits(text, "dddddddd"):
        return False
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    if not 1 <= month <= 12 or not 1 <= day <= _MONTH_DAYS[month - 1]:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return month != 2 or day <= 28 or leap


def _clock(text, sep):
    """hh mm ss within a day (a leap second 60 allowed, as ISO 8601 does)."""
    if sep:
        text = text[:2] + text[3:5] + text[6:]
    return int(text[:2]) <= 23 and int(text[2:4]) <= 59 and int(text[4:]) <= 60


def is_time(text):
    """ISO 8601 time (hh:mm:ss or hhmmss, then Z or an offset), or a date, 'T' and a time."""
    t = text.find("T")
    if t >= 0:
        return is_date(text[:t]) and is_time(text[t + 1 :])
    zone = max(text.find("Z"), text.find("+"), text.find("-"))
    if zone >= 0:
        z = text[zone + 1 :]
        if not (text[zone] == "Z" and not z or text[zone] != "Z" and (
                _digits(z, "dd") or _digits(z, "dd:dd") or _digits(z, "dddd"))):
            return False
        if z and (int(z[:2]) > 23 or len(z) > 2 and int(z[-2:]) > 59):
            return False
        text = text[:zone]
    if _digits(text, "dd:dd:dd"):
        return _clock(text, True)
    return _digits(text, "dddddd") and _clock(text, False)
