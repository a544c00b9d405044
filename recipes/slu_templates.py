"""Intents, templates and slot values of the synthetic SLURP-like slot-filling corpus.

Every intent has templates marked ``train`` or ``test`` (the test ones are never used to make
training sentences), and every slot type has values split the same way by :func:`split_values`,
so the test set measures generalisation to new phrasings and new slot values. All text is
lowercase words without digits, so speech synthesisers read it exactly as written.
"""

from __future__ import annotations

import hashlib

# intent -> (train templates, held-out test templates); {slot_type} marks a slot
TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "alarm_set": (["wake me up at {time} {date}", "set an alarm for {time}", "please set an alarm at {time} {date}",
                   "i need an alarm {date} at {time}"],
                  ["alarm at {time} {date} please", "can you get me up at {time}"]),
    "alarm_remove": (["cancel my alarm for {time}", "delete the {time} alarm", "remove the alarm set for {time} {date}"],
                     ["turn off my {time} alarm", "i do not need the alarm at {time} anymore"]),
    "weather_query": (["what is the weather in {place_name} {date}", "will it be {weather_descriptor} in {place_name}",
                       "tell me the forecast for {place_name}", "is it going to be {weather_descriptor} {date}"],
                      ["how is the weather looking in {place_name} {date}", "should i expect {weather_descriptor} {date}"]),
    "play_music": (["play {song_name} by {artist_name}", "put on some {artist_name}", "i want to hear {song_name}",
                    "play my {playlist_name} playlist"],
                   ["could you play something by {artist_name}", "start the song {song_name}"]),
    "play_radio": (["tune in to {radio_name}", "play {radio_name} on the radio", "switch the radio to {radio_name}"],
                   ["i would like to listen to {radio_name}", "radio {radio_name} please"]),
    "calendar_set": (["add {event_name} with {person} to my calendar {date}", "schedule {event_name} {date} at {time}",
                      "remind me about {event_name} {date}", "book a meeting with {person} at {time}"],
                     ["put {event_name} in my diary for {date}", "set up {event_name} with {person} {date}"]),
    "calendar_query": (["what do i have {date}", "when is my {event_name}", "am i free {date} at {time}"],
                       ["is there anything on my calendar {date}", "what time is the {event_name}"]),
    "iot_lights_on": (["turn on the lights in the {house_place}", "switch the {house_place} lights on",
                       "lights on in the {house_place} please"],
                      ["can you brighten up the {house_place}", "i need some light in the {house_place}"]),
    "iot_lights_off": (["turn off the lights in the {house_place}", "switch off the {house_place} lights"],
                       ["make the {house_place} dark", "kill the lights in the {house_place}"]),
    "iot_lights_change": (["make the {house_place} lights {color_type}", "change the lights to {color_type}"],
                          ["i want {color_type} light in the {house_place}", "set the {house_place} to {color_type}"]),
    "iot_device_on": (["turn on the {device_type} in the {house_place}", "start the {device_type}",
                       "switch on the {device_type}"],
                      ["get the {device_type} going", "power up the {device_type} in the {house_place}"]),
    "timer_set": (["set a timer for {duration}", "start a {duration} timer", "count down {duration}"],
                  ["time {duration} for me", "let me know when {duration} have passed"]),
    "transport_ticket": (["book a {transport_type} ticket to {place_name} {date}", "i need a {transport_type} to {place_name}",
                          "get me a ticket to {place_name} for {date}"],
                         ["find me a {transport_type} going to {place_name}", "reserve a seat to {place_name} {date}"]),
    "takeaway_order": (["order {food_type} from {business_name}", "i want to order some {food_type}",
                        "get me {food_type} for delivery"],
                       ["can {business_name} deliver some {food_type}", "i feel like {food_type} tonight"]),
}

# Carrier phrases around any template: how people address an assistant (multiplies the phrasings).
PREFIXES = ["", "hey", "okay", "excuse me", "hi there", "so"]
SUFFIXES = ["", "please", "thanks", "thank you", "if you can", "for me"]

_HOURS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_MINUTES = ["", "fifteen", "thirty", "forty five", "o five", "twenty"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "twelfth", "fifteenth", "twentieth"]


def _times() -> list[str]:
    return [f"{h} {m} {p}".replace("  ", " ") for h in _HOURS for m in _MINUTES for p in ("am", "pm")]


def _dates() -> list[str]:
    fixed = ["today", "tomorrow", "tonight", "this weekend", "next week", "tomorrow morning", "this evening"]
    return fixed + list(_WEEKDAYS) + [f"next {d}" for d in _WEEKDAYS] + [f"{d} morning" for d in _WEEKDAYS] + [
        f"the {o} of {m}" for o in _ORDINALS for m in _MONTHS]


def _durations() -> list[str]:
    counts = ["two", "three", "five", "ten", "fifteen", "twenty", "thirty", "forty", "forty five", "ninety"]
    return [f"{c} {u}" for c in counts for u in ("seconds", "minutes", "hours")] + ["one minute", "one hour", "half an hour"]


SLOT_VALUES: dict[str, list[str]] = {
    "time": _times(),
    "date": _dates(),
    "duration": _durations(),
    "place_name": ["london", "paris", "berlin", "madrid", "rome", "boston", "chicago", "seattle", "dublin", "vienna",
                   "oslo", "lisbon", "toronto", "sydney", "tokyo", "denver", "prague", "athens", "glasgow", "miami",
                   "houston", "amsterdam", "brussels", "helsinki", "warsaw", "budapest", "edinburgh", "montreal"],
    "person": ["john", "mary", "david", "sarah", "michael", "emma", "james", "olivia", "robert", "sophia", "peter",
               "laura", "daniel", "anna", "thomas", "grace", "william", "alice", "george", "lucy", "henry", "claire"],
    "artist_name": ["the beatles", "madonna", "adele", "queen", "elton john", "bob dylan", "the rolling stones",
                    "taylor swift", "nirvana", "abba", "prince", "coldplay", "radiohead", "shakira", "beyonce",
                    "pink floyd", "stevie wonder", "david bowie", "aretha franklin", "fleetwood mac", "oasis",
                    "the cure", "blondie", "sade"],
    "song_name": ["yesterday", "hey jude", "imagine", "bohemian rhapsody", "let it be", "hello", "thriller", "wonderwall",
                  "purple rain", "dancing queen", "like a prayer", "yellow", "creep", "hallelujah", "respect",
                  "hotel california", "superstition", "sweet caroline", "wild horses", "waterloo", "vogue",
                  "smooth operator", "heroes", "clocks"],
    "playlist_name": ["workout", "chill", "road trip", "party", "sleep", "focus", "morning", "dinner", "summer hits",
                      "rainy day", "running", "study", "relax", "cooking", "throwback", "love songs"],
    "radio_name": ["jazz fm", "classic rock radio", "the news channel", "country gold", "radio one", "smooth radio",
                   "talk sport", "heart radio", "capital radio", "the beat", "radio two", "magic radio",
                   "world service", "soul radio", "kiss radio", "planet rock"],
    "event_name": ["lunch", "dentist appointment", "team meeting", "birthday party", "doctor visit", "yoga class",
                   "conference call", "dinner", "job interview", "football practice", "book club", "haircut",
                   "piano lesson", "school play", "parents evening", "swimming lesson", "board meeting",
                   "wedding rehearsal", "car service", "gym session"],
    "weather_descriptor": ["rainy", "sunny", "cold", "windy", "snowing", "hot", "cloudy", "foggy", "stormy", "warm",
                           "freezing", "humid", "icy", "drizzly", "chilly", "mild"],
    "house_place": ["kitchen", "bedroom", "living room", "bathroom", "hallway", "garage", "office", "dining room",
                    "basement", "garden", "nursery", "attic", "study", "porch", "lounge", "cellar", "laundry room",
                    "guest room"],
    "color_type": ["red", "blue", "green", "warm white", "purple", "orange", "yellow", "pink", "soft white", "cool blue",
                   "violet", "amber", "turquoise", "gold", "lilac", "crimson"],
    "device_type": ["vacuum cleaner", "coffee machine", "fan", "heater", "washing machine", "dishwasher", "television",
                    "air conditioner", "kettle", "robot mower", "dryer", "speaker", "toaster", "radiator", "humidifier",
                    "dehumidifier", "slow cooker", "sprinkler"],
    "transport_type": ["train", "bus", "plane", "ferry", "coach", "taxi", "night train", "flight", "tram", "boat",
                       "express train", "shuttle bus"],
    "food_type": ["pizza", "sushi", "burgers", "noodles", "curry", "tacos", "fried chicken", "salad", "pasta",
                  "kebab", "dumplings", "fish and chips", "ramen", "burritos", "falafel", "pad thai", "lasagne",
                  "spring rolls"],
    "business_name": ["pizza palace", "golden dragon", "burger barn", "sushi house", "taco town", "curry corner",
                      "noodle bar", "the green kitchen", "luigi's", "mama's diner", "spice garden", "the chip shop",
                      "wok express", "bella napoli", "kebab king", "the salad bowl"],
}

TEST_VALUE_SHARE = 0.25


def split_values(slot_type: str, held_out: bool) -> list[str]:
    """Train or held-out values of a slot type.

    Values are ranked by a hash of ``slot_type:value`` (independent of list order) and the first
    quarter, at least three, are held out for test.
    """
    values = SLOT_VALUES[slot_type]
    ranked = sorted(values, key=lambda v: hashlib.sha256(f"{slot_type}:{v}".encode()).hexdigest())
    test = set(ranked[: max(3, round(TEST_VALUE_SHARE * len(values)))])
    return [v for v in values if (v in test) == held_out]
