"""The decision on a draft: send it, ask a human to review it, or hand off to the team.

Pure and small on purpose: every rule that can keep a wrong answer from a customer
lives here, where a test can pin it down without a server. The order of the rules is
the order of their importance: what the customer said outranks what the model thinks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..defaults import CONFIDENCE_THRESHOLD, ESCALATION_KEYWORDS, MAX_AI_REPLIES_PER_HOUR
from .draft import Draft
from .language import language_name
from .text import ACCENT_MARKS

# Plain-words requests for a person, one pattern per language, matched against the text
# folded by `_fold` (lower case, no accents, one apostrophe), so they are written that way.
# Deliberately specific: "the agent said" must not trigger, "agent please" and "talk to a
# real person" must. A person word counts next to a verb of talking to them, a "real" or
# "human", or a "please" that ends the clause ("Mitarbeiter bitte", not "ich bin Mitarbeiter,
# bitte helfen Sie"); talking about a person ("la persona que me atendio", "ik heb met een
# medewerker gesproken") does not count, nor do people of the customer's own team.
_END_OF_CLAUSE = r"(?![^\S\n]*\w)"  # nothing but punctuation up to the end of the line
# Staff, alone or in the usual compounds (Kundenberater, Sachbearbeiter, klantenservicemedewerker)
_DE_STAFF = (
    r"(?:kunden(?:dienst|service)?|service|support|sach)?-?"
    r"(?:mitarbeiter|berater|betreuer|bearbeiter)"
)
_NL_STAFF = r"(?:klantenservice|klanten|service|support)?-?medewerk(?:er|ster)"


def _human_request_pattern(source: str) -> re.Pattern[str]:
    return re.compile(source, re.VERBOSE)


_HUMAN_REQUEST: dict[str, re.Pattern[str]] = {
    "en": _human_request_pattern(
        r"""
        \b(?:talk|speak|chat|connect\s+me|put\s+me\s+through)\s+(?:to|with)\s+
            (?:a|an|some|your|the)?\s*(?:real|live|actual|human)?\s*
            (?:person|human|agent|someone|somebody|representative|rep|operator|people|staff|teammate)\b
        | \b(?:real|actual|live)\s+(?:person|human|people|agent)\b
        | \bhuman\s+(?:being|agent|support|please)\b
        | \b(?:agent|human|operator|representative)\s*[,!.]?\s*please\b
        | \bnot\s+(?:a|an|the)?\s*(?:bot|robot|ai|machine)\b
        | \bstop\s+(?:the\s+)?(?:bot|robot|ai)\b
        """
    ),
    "de": _human_request_pattern(
        rf"""
        # mit einem Menschen sprechen, mit jemandem vom Support reden
        \bmit\s+(?:(?:einem|einer|ihrem|ihrer|eurem|eurer|irgendeinem|irgendeiner)\s+)?
            (?:(?:echt|real|richtig|menschlich|lebendig)e[nmrs]?\s+)?
            (?:mensch(?:en)?|person|jemand(?:em|en)?|agent(?:en|in)?|operator(?:in)?
              |ansprechpartner(?:in|n)?|{_DE_STAFF}(?:in|n)?)\b
            (?!\s+(?:aus|von)\s+(?:meinem|meiner|unserem|unserer)\b)
            (?:\s+(?!der\b|die\b|das\b|den\b|dem\b)\w+){{0,4}}?
            \s+(?:sprechen|reden|chatten|schreiben|telefonieren|verbinden|verbunden)\b
        # verbinden Sie mich bitte mit einem Mitarbeiter
        | \b(?:sprechen|reden|chatten|verbinden|verbinde)\s+
            (?:(?:sie|du|mich|bitte|gerne?|kurz|direkt|doch|mal)\s+){{0,3}}
            mit\s+(?:(?:einem|einer|ihrem|ihrer|eurem|eurer)\s+)?
            (?:(?:echt|real|menschlich)e[nmr]?\s+)?
            (?:mensch(?:en)?|person|jemand(?:em)?|{_DE_STAFF}(?:in|n)?)\b
            (?!\s+(?:aus|von)\s+(?:meinem|meiner|unserem|unserer)\b)
        # kann ich jemanden sprechen, ich moechte einen Mitarbeiter sprechen
        | \b(?:(?:einen|eine|irgendeinen|irgendeine)\s+(?:(?:echt|menschlich)e[nr]?\s+)?
              (?:menschen|person|{_DE_STAFF}(?:in)?)|jemand(?:en)?)\b
            (?!\s+(?:aus|von)\s+(?:meinem|meiner|unserem|unserer)\b)
            (?:\s+(?!der\b|die\b|das\b|den\b|dem\b)\w+){{0,3}}?\s+sprechen\b
        # einen echten Mitarbeiter, ein richtiger Mensch
        | \b(?:echt|real|menschlich|lebendig)e[nmrs]?\s+
            (?:mensch(?:en)?|person|agent(?:en|in)?|ansprechpartner(?:in)?
              |{_DE_STAFF}(?:in|n)?)\b
        | \brichtige[nmr]?\s+mensch(?:en)?\b
        | \bmensch(?:en)?\s+aus\s+fleisch\s+und\s+blut\b
        # Mitarbeiter bitte!
        | \b(?:mensch(?:en)?|agent(?:in)?|operator(?:in)?|ansprechpartner(?:in)?
              |{_DE_STAFF}(?:in)?)\s*[,!.]?\s*bitte\b{_END_OF_CLAUSE}
        # keinen Bot bitte, nicht mit einem Roboter
        | \b(?<!\bbin\s)keine[nm]?\s+(?:chat)?(?:bot|roboter|maschine|ki)\b(?:\s*,?\s*bitte\b)?
            (?![^\S\n]*[\w?-])
        | \bnicht\s+mit\s+(?:einem|einer|dem|der)\s+(?:chat)?(?:bot|roboter|maschine|ki)\b
        | \b(?:will|mochte|moechte|brauche)\s+(?:\w+\s+){{0,2}}?keine[nm]?\s+
            (?:chat)?(?:bot|roboter|maschine|ki)\b
        """
    ),
    "fr": _human_request_pattern(
        rf"""
        # parler a un humain, discuter avec quelqu'un, en relation avec un conseiller
        \b(?:(?:parler|discuter|echanger|chatter|communiquer)(?:\s+(?:directement|vite))?
              \s+(?:a|avec)|en\s+relation\s+avec|pass(?:ez|er|e)[-\s]moi)\s+
            (?:(?:(?:un|une|le|la|des|votre|vos|un\s+de\s+vos|une\s+de\s+vos)\s+|l'\s*)
                (?:(?:vrai|vraie|veritable|reel|reelle|autre)\s+)?
                (?:humain(?:e|s)?|etre\s+humain|personne|conseill(?:er|ere)s?|agent(?:e|s)?
                  |operat(?:eur|rice)s?|interlocut(?:eur|rice)|technicien(?:ne)?|employe(?:e)?)\b
              | (?:quelqu'?\s*un|qqn|qqun)\b
                (?!\s+d(?:e\s+|'\s*)(?:mon|ma|mes|notre|nos)\b))
        # contacter un conseiller, avoir un humain au telephone
        | \b(?:joindre|contacter|avoir)\s+(?:un|une)\s+(?:(?:vrai|vraie|veritable)\s+)?
            (?:humain|conseill(?:er|ere)|operat(?:eur|rice))\b
        # un vrai conseiller, une personne reelle, un agent humain
        | \b(?:vrai|vraie|vrais|vraies|veritable|reel|reelle)\s+
            (?:humain|personne|conseill(?:er|ere)|agent|operat(?:eur|rice)|interlocut(?:eur|rice)
              |gens|etre\s+humain)s?\b
        | \b(?:personne|conseill(?:er|ere)|agent|operat(?:eur|rice)|interlocut(?:eur|rice))s?\s+
            (?:humaine?s?|reelle?s?|en\s+chair\s+et\s+en\s+os)\b
        # un humain svp
        | \b(?:humain|conseill(?:er|ere)|agent|operat(?:eur|rice)|quelqu'?\s*un|une\s+personne)
            \s*[,!.]?\s*(?:svp|stp|s'il\s+(?:vous|te)\s+plait)\b{_END_OF_CLAUSE}
        # pas un robot (but not "je ne suis pas un robot", the captcha)
        | \b(?<!\bsuis\s)pas\s+(?:(?:parler|discuter)\s+(?:a|avec)\s+)?
            (?:(?:un|une|le|la|de|d'|l')\s*)?(?:robot|bot|chatbot|ia)\b(?!-)
        """
    ),
    "es": _human_request_pattern(
        rf"""
        # hablar con una persona, comunicarme con un asesor, pasame con alguien
        \b(?:hablar|conversar|chatear|platicar|comunicarme|contactar(?:me)?
              |ponerme\s+en\s+contacto|pas(?:ame|arme|anme|enme)
              |transfier(?:a|e|ame|eme)|transferirme|conectarme|conecte?me)\s+con\s+
            (?:(?:un|una|el|la|algun|alguna|su|sus|uno\s+de\s+sus|una\s+de\s+sus)\s+)?
            (?:(?:verdader[oa]|autentic[oa])\s+)?
            (?:personas?|human[oa]s?|ser\s+humano|agentes?|asesor(?:a|es)?|operador(?:a|es)?
              |representantes?|ejecutiv[oa]|emplead[oa]|alguien|especialista)\b
            (?!\s+de\s+(?:mi|mis|nuestro|nuestra|nuestros|nuestras)\b)
        # que me atienda una persona
        | \bme\s+atienda\s+(?:(?:un|una)\s+)?(?:persona|human[oa]|agente|asesor(?:a)?|alguien)\b
        # un agente humano, una persona real, alguien de verdad
        | \b(?:persona|agente|asesor(?:a)?|operador(?:a)?|representante|ejecutiv[oa]|alguien)s?\s+
            (?:human[oa]s?|real(?:es)?|de\s+verdad|de\s+carne\s+y\s+hueso)\b
        | \b(?:verdader[oa]|autentic[oa])\s+(?:human[oa]|persona|agente|asesor(?:a)?)\b
        # una persona por favor
        | \b(?:persona|human[oa]|agente|asesor(?:a)?|operador(?:a)?|representante)
            \s*[,!.]?\s*(?:por\s*favor|porfa|xfa)\b{_END_OF_CLAUSE}
        # no quiero un bot
        | \bno\s+(?:quiero\s+)?(?:hablar\s+con\s+)?(?:(?:con\s+)?(?:un|una|el|la)\s+)?
            (?:robot|bot|chatbot|maquina)\b(?!-)
        """
    ),
    "pt": _human_request_pattern(
        rf"""
        # falar com um atendente, conversar com alguem
        \b(?:falar|conversar|papear|bater\s+(?:um\s+)?papo|comunicar(?:-me)?|me\s+comunicar
              |conectar(?:-me)?|chatear)\s+com\s+
            (?:(?:um|uma|o|a|algum|alguma|seu|sua|seus|suas|um\s+de\s+seus|uma\s+de\s+suas)\s+)?
            (?:verdadeir[oa]\s+)?
            (?:pessoas?|human[oa]s?|ser\s+humano|atendentes?|agentes?|operador(?:a|es)?
              |consultor(?:a|es)?|representantes?|funcionari[oa]|colaborador(?:a)?|alguem
              |especialista)\b
            (?!\s+(?:d[aoe]s?\s+)?(?:meu|minha|meus|minhas|nosso|nossa)\b)
        # me transfere para um atendente
        | (?:\bme\s+(?:transfer(?:ir|e|a)|passa(?:r)?|passe|encaminh(?:ar|e|a))
              |\b(?:transferir|transfira|passar|passe|encaminhar|encaminhe)-me)
            \s+(?:para|pra|pro)\s+(?:(?:um|uma|o|a)\s+)?
            (?:pessoa|human[oa]|atendente|agente|operador(?:a)?|consultor(?:a)?|alguem)\b
        # atendimento humano, atendente humano, pessoa de verdade
        | \batendimento\s+(?:humano|humanizado|pessoal)\b
        | \b(?:pessoa|atendente|agente|operador(?:a)?|consultor(?:a)?|representante|alguem)s?\s+
            (?:human[oa]s?|rea(?:l|is)|de\s+verdade|de\s+carne\s+e\s+osso)\b
        | \bverdadeir[oa]\s+(?:human[oa]|pessoa|atendente)\b
        # um atendente por favor
        | \b(?:atendente|human[oa]|agente|operador(?:a)?|pessoa|consultor(?:a)?|representante)
            \s*[,!.]?\s*(?:por\s*favor|pfv|pf)\b{_END_OF_CLAUSE}
        # nao quero um robo
        | \bnao\s+(?:quero\s+)?(?:falar\s+com\s+)?(?:(?:com\s+)?(?:um|uma|o|a)\s+)?
            (?:robo|bot|chatbot|maquina)\b(?!-)
        """
    ),
    "it": _human_request_pattern(
        rf"""
        # parlare con un operatore, mettermi in contatto con una persona
        \b(?:parlare|chattare|comunicare|conversare
              |(?:mett(?:ere|ermi|etemi)|entrare|essere\s+messo)\s+in\s+contatto)\s+con\s+
            (?:(?:(?:un|una|uno|il|la|lo|qualche|un\s+vostro|una\s+vostra|un\s+vero|una\s+vera)\s+
                |(?:un|l)'\s*))?
            (?:operat(?:ore|rice|ori)|persone?|uman[oa]|essere\s+umano|agente|consulente
              |addett[oa]|qualcuno|dipendente|tecnico|impiegat[oa])\b
            (?!\s+(?:del|della|dello|dei|delle|di|nel|nella)\s+
                (?:mio|mia|miei|mie|nostro|nostra|nostri)\b)
        # passami un operatore
        | \b(?:passami|passatemi|mi\s+passi|mi\s+passa|mi\s+passate)\s+
            (?:(?:un|una)\s+|un'\s*)?
            (?:operat(?:ore|rice)|persona|umano|consulente|agente|qualcuno)\b
        # una persona vera, un operatore umano, un vero operatore
        | \b(?:persona|operat(?:ore|rice)|agente|consulente|assistente|addett[oa])\s+
            (?:ver[ao]|reale|uman[ao]|in\s+carne\s+e\s+ossa)\b
        | \bver[ao]\s+(?:persona|operat(?:ore|rice)|uman[oa]|essere\s+umano|consulente)\b
        # operatore per favore
        | \b(?:operat(?:ore|rice)|uman[oa]|agente|persona|consulente)
            \s*[,!.]?\s*(?:per\s*favore|per\s+piacere|per\s+cortesia)\b{_END_OF_CLAUSE}
        # non voglio un robot (but not "non sono un robot")
        | \bnon\s+(?:voglio\s+)?(?:parlare\s+con\s+)?(?:(?:con\s+)?(?:un|una|il|la|lo)\s+|l'\s*)?
            (?:robot|bot|chatbot|macchina)\b(?!-)
        """
    ),
    "nl": _human_request_pattern(
        rf"""
        # met een mens praten, met iemand van de klantenservice spreken
        \bmet\s+(?:(?:een|jullie|uw|een\s+van\s+jullie|een\s+van\s+uw)\s+)?
            (?:(?:echte|menselijke|levende)\s+)?
            (?:mens(?:en)?|persoon|iemand|agent|operator|adviseur|{_NL_STAFF}s?)\b
            (?!\s+(?:van|uit)\s+(?:mijn|ons|onze)\b)
            (?:\s+(?!die\b|dat\b|wie\b)\w+){{0,4}}?
            \s+(?:praten|spreken|chatten|bellen|communiceren|verbonden|verbinden|doorverbinden)\b
        # kan ik praten met een medewerker, verbind me door met iemand
        | \b(?:praten|spreken|chatten|verbind|verbinden|doorverbinden)\s+
            (?:(?:me|mij|u|graag|even|alstublieft|aub|door|direct|nu)\s+){{0,3}}
            met\s+(?:(?:een|jullie|uw|een\s+van\s+jullie|een\s+van\s+uw)\s+)?
            (?:(?:echte|menselijke)\s+)?
            (?:mens|persoon|iemand|agent|adviseur|{_NL_STAFF})\b
            (?!\s+(?:van|uit)\s+(?:mijn|ons|onze)\b)
        # kan ik iemand spreken, ik wil graag een medewerker spreken
        | \b(?:(?:een|een\s+van\s+jullie|een\s+van\s+uw)\s+(?:(?:echte|menselijke)\s+)?
              (?:mens|persoon|adviseur|{_NL_STAFF})|iemand)\b
            (?!\s+(?:van|uit)\s+(?:mijn|ons|onze)\b)
            (?:\s+(?!die\b|dat\b|wie\b)\w+){{0,3}}?\s+(?:te\s+)?spreken\b
        # een echte medewerker, een mens van vlees en bloed
        | \b(?:echte|menselijke|levende)\s+
            (?:mens(?:en)?|persoon|agent|adviseur|operator|{_NL_STAFF})\b
        | \becht\s+mens\b
        | \bmens\s+van\s+vlees\s+en\s+bloed\b
        # medewerker alstublieft
        | \b(?:mens|agent|persoon|adviseur|operator|{_NL_STAFF})
            \s*[,!.]?\s*(?:alstublieft|alsjeblieft|astublieft|aub|a\.u\.b|ajb|graag)\b
            {_END_OF_CLAUSE}
        # geen robot!, niet met een bot
        | \b(?<!\bben\s)geen\s+(?:chat)?(?:bot|robot|computer)\b(?![^\S\n]*[\w?-])
        | \bniet\s+met\s+(?:een|de)\s+(?:chat)?(?:bot|robot|computer)\b
        | \bwil\s+(?:\w+\s+){{0,2}}?geen\s+(?:chat)?(?:bot|robot|computer)\b
        """
    ),
}
# One pass for all the languages, tried only where a word of two letters or more starts (as
# every pattern above does): seven searches of a long message cost three times as much.
_ANY_HUMAN_REQUEST = re.compile(
    r"(?<!\w)(?=\w\w)(?:" + "|".join(f"(?:{p.pattern}\n)" for p in _HUMAN_REQUEST.values()) + ")",
    re.VERBOSE,
)


class Action(StrEnum):
    REPLY = "reply"  # send to the customer as the configured teammate
    REVIEW = "review"  # a human looks at the draft first (Slack, or an internal note)
    HANDOFF = "handoff"  # internal note, assignment, and the AI stays out


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    rule: str = ""  # a short fixed code for metrics: the reason without the details


@dataclass(frozen=True)
class PolicyRules:
    threshold: float = CONFIDENCE_THRESHOLD
    escalation_keywords: tuple[str, ...] = ESCALATION_KEYWORDS
    max_ai_replies_per_hour: int = MAX_AI_REPLIES_PER_HOUR
    reply_languages: tuple[str, ...] = ()  # REPLY_LANGUAGES; empty: any language


def check_before_drafting(
    rules: PolicyRules,
    ai_replies_last_hour: int,
    *,
    language: str | None = None,
    repeated: bool = False,
) -> Decision | None:
    """Rules that need no draft: no model call is spent on a conversation in a loop, on a
    language the team does not answer (`language`, as detected), or on a question our
    last answer did not settle (`repeated`)."""
    if ai_replies_last_hour >= rules.max_ai_replies_per_hour:
        return Decision(
            Action.HANDOFF,
            f"already sent {ai_replies_last_hour} AI replies in this conversation in the last "
            f"hour (MAX_AI_REPLIES_PER_HOUR is {rules.max_ai_replies_per_hour})",
            "ai_reply_limit",
        )
    unsupported = _unsupported_language(language, rules)
    if unsupported is not None:
        return unsupported
    if repeated:
        return Decision(
            Action.HANDOFF,
            "the customer asked the same again after an AI answer (the answer did not help)",
            "repeated_question",
        )
    return None


def _unsupported_language(language: str | None, rules: PolicyRules) -> Decision | None:
    if not language or not rules.reply_languages or language in rules.reply_languages:
        return None
    return Decision(
        Action.HANDOFF,
        f"the customer writes in {language_name(language)} ({language}); REPLY_LANGUAGES is "
        f"{', '.join(rules.reply_languages)}",
        "unsupported_language",
    )


def decide(draft: Draft, customer_texts: Sequence[str], rules: PolicyRules) -> Decision:
    text = "\n".join(customer_texts)
    keyword = matched_keyword(text, rules.escalation_keywords)
    if keyword:
        return Decision(
            Action.HANDOFF, f"the customer's message mentions {keyword!r}", "escalation_keyword"
        )
    if asks_for_human(text):
        return Decision(Action.HANDOFF, "the customer asked for a human", "human_requested")
    if draft.error:
        return Decision(Action.REVIEW, f"model reply unusable: {draft.error}", "unusable_reply")
    if not draft.answer.strip():
        return Decision(Action.HANDOFF, "the draft is empty", "empty_draft")
    if draft.needs_human:
        return Decision(Action.HANDOFF, "the model said a human should answer", "model_needs_human")
    unsupported = _unsupported_language(draft.language, rules)
    if unsupported is not None:
        return unsupported
    if draft.sentiment == "frustrated":
        return Decision(
            Action.HANDOFF, "the model says the customer is frustrated", "customer_frustrated"
        )
    if draft.confidence < rules.threshold:
        return Decision(
            Action.REVIEW,
            f"confidence {draft.confidence:.2f} is below the threshold {rules.threshold:.2f}",
            "low_confidence",
        )
    return Decision(
        Action.REPLY,
        f"confidence {draft.confidence:.2f} is at or above the threshold {rules.threshold:.2f}",
        "confident",
    )


# `_fold` removes `text.ACCENT_MARKS`, so a keyword in a script whose marks are letters
# keeps its meaning.
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc\u00b4`\u2032]")  # str.translate is slower

# Scripts written without spaces between words, by code point: a keyword in one of them is
# found anywhere in the text, and next to one of their letters a word of another script
# still ends ("SIM" in "SIMカードを解約").
_UNSPACED_SCRIPTS: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3040, 0x9FFF),  # kana, Bopomofo, Hangul compatibility jamo, CJK ideographs (and ext. A)
    (0xA960, 0xA97F),  # Hangul Jamo extended-A
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xAC00, 0xD7FF),  # Hangul syllables, Hangul Jamo extended-B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # halfwidth Katakana and Hangul
    (0x1B000, 0x1B16F),  # kana supplement and extensions
    (0x20000, 0x3FFFF),  # CJK ideographs, extensions B and later
)
_UNSPACED_CLASS = "".join(f"{chr(low)}-{chr(high)}" for low, high in _UNSPACED_SCRIPTS)
# No letter or digit of a spaced script right after a keyword (`_WORD_END`) or before it
# (a lookbehind put after the keyword's first word, so that `re` can scan for that word).
_SPACED_WORD_CHAR = rf"[^\W{_UNSPACED_CLASS}]"
_WORD_END = rf"(?!{_SPACED_WORD_CHAR})"


def _fold(text: str) -> str:
    """`text` for comparing: compatibility forms, accents and case folded ("Ｋündigung" and
    "KUNDIGUNG" are both "kundigung"), curly apostrophes made straight, Hangul and kana
    recomposed."""
    import unicodedata  # here and not with the module's imports only to keep this edit local

    decomposed = unicodedata.normalize("NFKD", _APOSTROPHES.sub("'", text))
    return unicodedata.normalize("NFC", ACCENT_MARKS.sub("", decomposed).casefold())


def _unspaced(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _UNSPACED_SCRIPTS)


def _keyword_pattern(keyword: str) -> str | None:
    """The regex of one folded keyword: whole words, any spaces between them; anywhere in
    the text when the keyword is in a script written without spaces."""
    words = keyword.split()
    if not words:
        return None
    if any(_unspaced(char) for word in words for char in word):
        return r"\s*".join(re.escape(word) for word in words)
    first, *rest = (re.escape(word) for word in words)
    if re.match(r"\w", keyword[0]):  # "c.o.d." or "24/7" end on their own characters
        first += f"(?<!{_SPACED_WORD_CHAR}{first})"
    pattern = r"\s+".join([first, *rest])
    if re.match(r"\w", keyword[-1]):
        pattern += _WORD_END
    return pattern


def matched_keyword(text: str, keywords: Sequence[str]) -> str | None:
    """The first escalation keyword in `text`, as configured: whole words (or anywhere, for
    Chinese, Japanese, Korean, Thai, ...), any case, with or without accents."""
    folded = _fold(text)
    for keyword in keywords:
        pattern = _keyword_pattern(_fold(keyword).strip())
        if pattern and re.search(pattern, folded):
            return keyword.strip()
    return None


def asks_for_human(text: str) -> bool:
    """Whether the customer asks for a person, in English, German, French, Spanish,
    Portuguese, Italian or Dutch (see `_HUMAN_REQUEST`)."""
    folded = _fold(text)
    return _ANY_HUMAN_REQUEST.search(folded) is not None


def parse_keywords(raw: str) -> tuple[str, ...]:
    """`ESCALATION_KEYWORDS`: comma separated, blanks ignored, case kept for messages."""
    return tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
