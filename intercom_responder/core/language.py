"""Which language a customer wrote in, told from the text alone (pure, standard library).

The daemon hands off a message in a language the team does not answer (REPLY_LANGUAGES)
even when the model does not say which language it saw: the GPT Trainer responder
returns plain text. So the guess must be cheap, offline and, above all, careful: a wrong
language hands a conversation to a human for nothing, so `detect_language` says None
whenever the text does not make the language clear.

How it decides:

1. URLs, e-mail addresses, numbers, code and code-like tokens (``order_id``,
   ``file.py``, ``A-12345``, ``getUser``) are dropped: they are in no language.
2. The writing system with the most letters wins. A CJK character counts as
   `_CJK_LETTER_WEIGHT` letters, since one says about as much as a short Latin word,
   so a Japanese message with an English product name stays Japanese, while an English
   message quoting one Japanese word stays English. Most scripts name one language.
3. Latin script is scored with the most common function words of each language. A word
   several languages share (``de``, ``a``, ``no``) counts for each of them only in part;
   letters like ß or ñ only break a tie, since borrowed words carry them everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

#: Only the opening is read: a longer message is a pasted log or a quoted thread, its
#: opening is what the customer wrote, and a megabyte must not cost the daemon time.
MAX_CHARS = 20_000
#: Fewer Latin-script words than this say too little (``"Hallo"``, ``"ok thanks"``).
MIN_WORDS = 3
#: The best language's score (a shared word counts in part) must reach this ...
MIN_SCORE = 1.0
#: ... and its function words must be at least this share of the words: a list of
#: product names with one "the" in it is in no language in particular.
MIN_COVERAGE = 0.15
#: A CJK or Hangul character carries about as much as this many Latin letters.
_CJK_LETTER_WEIGHT = 3
#: A non-Latin script needs this much weight: one ideograph or "Да" could be several
#: languages.
_MIN_SCRIPT_WEIGHT = 4
_TIE = 1e-9

# ---------------------------------------------------------------------------------------
# Tokens in no language: code between backticks, and any run of printable ASCII with a
# digit, a symbol, a dot inside or camelCase in it. That one rule takes URLs, e-mail
# addresses, order numbers, paths and identifiers. A run is matched only from its start
# and consumed possessively, so a pasted blob without spaces costs one pass, not a square.

_CODE_SPAN = re.compile(r"`(?:``.*?(?:```|\Z)|[^`\n]{1,200}`)", re.DOTALL)
_ASCII_RUN = r"[\x21-\x7e]"
_CODE_LIKE = re.compile(
    rf"(?<!{_ASCII_RUN})(?={_ASCII_RUN}*?"
    r"(?:[0-9_/\\#=@%&+|<>{}\[\]$^]|[A-Za-z]\.[a-z0-9]|[a-z][A-Z]))"
    rf"{_ASCII_RUN}++"
)

# ---------------------------------------------------------------------------------------
# Scripts: the letters of each (no digits or punctuation of the block).

_LATIN = "A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9d"
_HAN = "\u3005\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HANGUL = "\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3"
_THAI = "\u0e01-\u0e3a\u0e40-\u0e4e"
_DEVANAGARI = "\u0900-\u0963\u0971-\u097f"
_ARABIC = "\u0620-\u065f\u066e-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff"
_HEBREW = "\u05d0-\u05ea\u05ef-\u05f2"
_GREEK = "\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03ff\u1f00-\u1fff"
_CYRILLIC = "\u0400-\u0481\u048a-\u052f"

#: Script -> (letters, weight of one letter).
_SCRIPTS: dict[str, tuple[re.Pattern[str], int]] = {
    "kana": (re.compile(f"[{_KANA}]+"), _CJK_LETTER_WEIGHT),
    "han": (re.compile(f"[{_HAN}]+"), _CJK_LETTER_WEIGHT),
    "hangul": (re.compile(f"[{_HANGUL}]+"), _CJK_LETTER_WEIGHT),
    "thai": (re.compile(f"[{_THAI}]+"), 1),
    "devanagari": (re.compile(f"[{_DEVANAGARI}]+"), 1),
    "arabic": (re.compile(f"[{_ARABIC}]+"), 1),
    "hebrew": (re.compile(f"[{_HEBREW}]+"), 1),
    "greek": (re.compile(f"[{_GREEK}]+"), 1),
    "cyrillic": (re.compile(f"[{_CYRILLIC}]+"), 1),
}
_NON_LATIN = re.compile(
    f"[{_KANA}{_HAN}{_HANGUL}{_THAI}{_DEVANAGARI}{_ARABIC}{_HEBREW}{_GREEK}{_CYRILLIC}]"
)
_LATIN_LETTERS = re.compile(f"[{_LATIN}]+")
#: Scripts that name one language; kana, Han and Cyrillic need a closer look.
_SCRIPT_LANGUAGE = {
    "hangul": "ko",
    "thai": "th",
    "devanagari": "hi",
    "arabic": "ar",
    "hebrew": "he",
    "greek": "el",
}
_UKRAINIAN_ONLY = "іїєґ"
_RUSSIAN_ONLY = "ыэъё"

# ---------------------------------------------------------------------------------------
# Latin script: function words, and the words of a support message nobody leaves out
# (greetings, thanks). An entry ending or starting with an apostrophe is an elision or
# a contraction: "l'adresse" scores "l'", "don't" scores "'t".

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": """the a an and or but is are was were be been have has had do does did not
            no to of in on at for with from by it this that i you we my your me can will
            would please thanks thank hi hello what how why there if so just any 't 'm 're
            've 'll""",
        "de": """der die das und ist nicht ich sie es ein eine einen mit auf für zu von den
            dem des im in bei mein meine meinen kann habe hat wir sich auch noch aber oder
            wie was bitte danke hallo nach schon kein keine sind wird wenn dass um mir mich
            an aus nur""",
        "fr": """le la les un une des du de et est pas ne je vous nous il elle on ce cette
            que qui dans pour avec sur par mon ma mes votre vos au aux mais ou plus ai suis
            sont bonjour merci l' d' j' qu' n' c' s' m'""",
        "es": """el la los las un una de del y que en es no por para con se lo mi mis me su
            sus al pero como más muy ya está estoy esta este hola gracias tengo puedo hay
            he ha sin porque cuando o a le qué cómo nos también""",
        "pt": """o a os as um uma de do da dos das e que é em no na nos com para por não se
            eu me meu minha você mas mais como ao à isso está estou esta este tenho foi
            obrigado obrigada olá já muito seu sua pelo pela ele""",
        "it": """il lo la i gli le un una di del della dei e è che non per in con su da mi
            ho ha sono ma come anche questo questa mio mia al alla nel nella grazie ciao
            buongiorno posso più si perché ancora l' dell' un' c' all' nell' sull' dall'""",
        "nl": """de het een en van is niet ik je u we mijn met op voor te dat die in er aan
            maar of ook om bij kan heb heeft wordt zijn geen nog wel hallo dank bedankt
            graag hoe wat als naar uit dit jullie moet""",
    }.items()
}


def _feature_weights(lists: Mapping[str, frozenset[str]]) -> dict[str, dict[str, float]]:
    """Word -> {language: weight}: a word shared by k languages counts 1/k for each."""
    owners: dict[str, list[str]] = {}
    for lang, words in lists.items():
        for word in words:
            owners.setdefault(word, []).append(lang)
    return {word: {lang: 1 / len(langs) for lang in langs} for word, langs in owners.items()}


_WEIGHTS = _feature_weights(_STOPWORDS)
_WORD = re.compile(f"[{_LATIN}]+(?:'[{_LATIN}]+)?")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'"})
#: Every letter the seven languages use; a word with another one (ł, ş, å, ő) is in a
#: language this module does not score, and enough of them make the answer None.
_FOREIGN_LETTER = re.compile("[^a-z'àâäçéèêëîïôöœùûüÿßñáíóúãõìò]")


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the language `text` is written in, or None when unclear.

    None for a text too short to tell, without letters, or with two languages tied.
    """
    cleaned = _without_ignored(unicodedata.normalize("NFKC", text[:MAX_CHARS]))
    script = _main_script(cleaned)
    if script is None:
        return None
    if script == "latin":
        return _latin_language(cleaned)
    if script == "cjk":
        return "ja" if _SCRIPTS["kana"][0].search(cleaned) else "zh"
    if script == "cyrillic":
        return _cyrillic_language(cleaned)
    return _SCRIPT_LANGUAGE[script]


def _without_ignored(text: str) -> str:
    """`text` with URLs, addresses, numbers and code replaced by spaces."""
    return _CODE_LIKE.sub(" ", _CODE_SPAN.sub(" ", text.translate(_APOSTROPHES)))


def _letters(pattern: re.Pattern[str], text: str) -> int:
    return sum(map(len, pattern.findall(text)))


def _main_script(text: str) -> str | None:
    """The script with the most (weighted) letters: "latin", "cjk", "cyrillic", ...

    Kana and Han are one script here (Japanese mixes them); None for no letters or a tie.
    """
    if not _NON_LATIN.search(text):  # the common case: skip nine scans
        return "latin" if _LATIN_LETTERS.search(text) else None
    weights: dict[str, int] = {"latin": _letters(_LATIN_LETTERS, text)}
    for name, (pattern, weight) in _SCRIPTS.items():
        key = "cjk" if name in ("kana", "han") else name
        weights[key] = weights.get(key, 0) + weight * _letters(pattern, text)
    ranked = sorted(weights.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top == 0 or top == second:
        return None
    if best != "latin" and top < _MIN_SCRIPT_WEIGHT:
        return None
    return best


def _cyrillic_language(text: str) -> str:
    """Ukrainian when its own letters (і ї є ґ) outnumber Russian's (ы э ъ ё)."""
    lowered = text.lower()
    ukrainian = sum(lowered.count(letter) for letter in _UKRAINIAN_ONLY)
    russian = sum(lowered.count(letter) for letter in _RUSSIAN_ONLY)
    return "uk" if ukrainian > russian else "ru"


def _latin_language(text: str) -> str | None:
    """The language whose function words the text uses most, if that is clear enough."""
    lowered = text.lower()
    words = Counter(_WORD.findall(lowered))
    total = sum(words.values())
    if total < MIN_WORDS:
        return None
    scores, hits = _scores(words)
    leader = _leader(scores, lowered, words)
    if leader is None:
        return None
    if scores[leader] < MIN_SCORE or hits[leader] < MIN_COVERAGE * total:
        return None
    # Polish, Turkish or Swedish share a few short words with these languages (na, do,
    # i, kan); their own letters (ł, ş, å) in enough words say it is none of them.
    foreign = sum(n for word, n in words.items() if _FOREIGN_LETTER.search(word))
    if foreign * 2 >= scores[leader]:
        return None
    return leader


def _leader(scores: Mapping[str, float], lowered: str, words: Counter[str]) -> str | None:
    """The best-scoring language; a tie goes to letter hints, else to nobody."""
    if not scores:
        return None
    best = max(scores.values())
    leaders = [lang for lang, score in scores.items() if best - score < _TIE]
    return leaders[0] if len(leaders) == 1 else _tie_break(leaders, lowered, words)


def _features(word: str) -> Iterable[str]:
    """What one word scores: itself, or both sides of an elision ("l'", "'t")."""
    if "'" not in word:
        return (word,)
    head, tail = word.split("'", 1)
    return (f"{head}'", f"'{tail}")


def _scores(words: Counter[str]) -> tuple[dict[str, float], Counter[str]]:
    """Language -> weighted score, and language -> number of its function words seen."""
    scores: dict[str, float] = {}
    hits: Counter[str] = Counter()
    for word, count in words.items():
        for feature in _features(word):
            for lang, weight in _WEIGHTS.get(feature, {}).items():
                scores[lang] = scores.get(lang, 0.0) + weight * count
                hits[lang] += count
    return scores, hits


def _hints(lowered: str, words: Counter[str]) -> dict[str, int]:
    """Letters that lean to one language; weak evidence, so they only break ties."""
    italian_words = "il" in words or "che" in words
    return {
        "de": sum(lowered.count(c) for c in "ßäöü"),
        "es": sum(lowered.count(c) for c in "ñ¿¡"),
        "pt": sum(lowered.count(c) for c in "çãõ"),
        "fr": sum(lowered.count(c) for c in "çœ"),
        "it": sum(lowered.count(c) for c in "èàìò") if italian_words else 0,
        "nl": lowered.count("ij"),
    }


def _tie_break(leaders: list[str], lowered: str, words: Counter[str]) -> str | None:
    """The tied language with the most letter hints, or None if that ties too."""
    hints = _hints(lowered, words)
    ranked = sorted(leaders, key=lambda lang: hints.get(lang, 0), reverse=True)
    if hints.get(ranked[0], 0) == hints.get(ranked[1], 0):
        return None
    return ranked[0]


# ---------------------------------------------------------------------------------------

_CODE = re.compile(r"([A-Za-z]{2})(?:[-_][A-Za-z0-9]{1,8})*")


def parse_languages(raw: str) -> tuple[str, ...]:
    """`"en, de,FR"` -> `("en", "de", "fr")`; a region is dropped (`"pt-BR"` -> `"pt"`).

    Duplicates go, the order stays (the first may be the team's main language). Raises
    ValueError naming the first item that is not a language code, so a typo such as
    "english" stops the daemon at start instead of handing off every conversation.
    """
    codes: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        match = _CODE.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not a two-letter language code like en or de")
        code = match.group(1).lower()
        if code not in codes:
            codes.append(code)
    return tuple(codes)


_NAMES = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sr": "Serbian",
    "sv": "Swedish",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def language_name(code: str) -> str:
    """`"de"` -> `"German"`, for notes people read; an unknown code is returned as given."""
    return _NAMES.get(code.strip().lower(), code)
