"""Seeded public-domain texts for synthetic speech, written by this module itself.

English comes from a small hand-written grammar (subjects, verbs, objects, places, adverbs,
numbers, questions). Other languages get short everyday phrases where we know a few words of the
language, mixed with numbers, dates and clock times written as digits: every TTS front end expands
digits in its own language, so a language without phrases still gets speech in that language.
Everything is drawn from a :class:`random.Random` the caller seeds, so the same seed gives the
same texts on every machine.
"""

from __future__ import annotations

import random

from sqa.errors import SqaError

SUBJECTS = (
    "the old farmer", "my neighbour", "a young teacher", "the little girl", "our captain",
    "the doctor", "every student", "the baker", "a tired driver", "the children", "my brother",
    "the new manager", "a quiet man", "her grandmother", "the musicians", "his sister",
)  # fmt: skip
# (past tense, base form): statements use the first, questions the second.
VERBS = (
    ("found", "find"), ("painted", "paint"), ("carried", "carry"), ("opened", "open"),
    ("repaired", "repair"), ("counted", "count"), ("sold", "sell"), ("borrowed", "borrow"),
    ("cleaned", "clean"), ("described", "describe"), ("lost", "lose"), ("bought", "buy"),
    ("watched", "watch"), ("moved", "move"), ("wrapped", "wrap"), ("noticed", "notice"),
)  # fmt: skip
OBJECTS = (
    "a red bicycle", "the wooden box", "an old map", "the heavy door", "a long letter",
    "the blue kettle", "a basket of pears", "the garden gate", "a small boat", "the broken clock",
    "a warm coat", "the kitchen table", "a bright lantern", "the silver key",
)  # fmt: skip
PLURALS = (
    "apples", "books", "chairs", "bottles", "stones", "tickets", "candles", "shirts", "boxes",
    "lamps", "envelopes", "baskets",
)  # fmt: skip
PLACES = (
    "near the river", "in the garden", "at the station", "behind the school", "on the hill",
    "in the market", "by the harbour", "under the bridge", "at the corner shop",
)  # fmt: skip
ADVERBS = (
    "quietly", "yesterday", "slowly", "again", "carefully", "before dinner", "in the morning",
    "after the storm", "last winter", "on Sunday", "without a word", "as usual",
)  # fmt: skip
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

# Everyday phrases per language (base code as in espeak-ng/festival). Placeholders {n}, {time}
# and {date} become digits. Arabic has none on purpose: espeak-ng wants vowelled Arabic script,
# so Arabic voices read digits only.
PHRASES: dict[str, tuple[str, ...]] = {
    "de": ("Guten Morgen", "Vielen Dank", "Das Wetter ist heute schön",
           "Der Zug fährt um {time} ab", "Ich habe {n} Bücher gekauft",
           "Wir treffen uns am {date}", "Das Haus steht am Fluss"),
    "fr": ("Bonjour", "Merci beaucoup", "Il fait beau aujourd'hui", "Le train part à {time}",
           "J'ai acheté {n} livres", "Nous arrivons le {date}",
           "La maison est près de la rivière"),
    "es": ("Buenos días", "Muchas gracias", "Hoy hace buen tiempo", "El tren sale a las {time}",
           "Compré {n} libros", "Llegamos el {date}", "La casa está cerca del río"),
    "it": ("Buongiorno", "Grazie mille", "Oggi fa bel tempo", "Il treno parte alle {time}",
           "Ho comprato {n} libri", "Arriviamo il {date}", "La casa è vicino al fiume"),
    "pt": ("Bom dia", "Muito obrigado", "Hoje o tempo está bom", "O trem parte às {time}",
           "Comprei {n} livros", "Chegamos no dia {date}", "A casa fica perto do rio"),
    "ca": ("Bon dia", "Moltes gràcies", "Avui fa bon temps", "El tren surt a les {time}",
           "He comprat {n} llibres", "La casa és a prop del riu"),
    "nl": ("Goedemorgen", "Dank je wel", "Het weer is mooi vandaag",
           "De trein vertrekt om {time}", "Ik heb {n} boeken gekocht", "We komen op {date}",
           "Het huis staat bij de rivier"),
    "sv": ("God morgon", "Tack så mycket", "Vädret är fint idag", "Tåget går klockan {time}",
           "Jag köpte {n} böcker", "Vi kommer den {date}", "Huset ligger vid floden"),
    "pl": ("Dzień dobry", "Dziękuję bardzo", "Dzisiaj jest ładna pogoda",
           "Pociąg odjeżdża o {time}", "Kupiłem {n} książek", "Dom stoi nad rzeką"),
    "ru": ("Доброе утро", "Большое спасибо", "Сегодня хорошая погода",
           "Поезд отправляется в {time}", "Я купил {n} книг", "Дом стоит у реки",
           "Мы гуляли в парке", "Вечером идёт дождь"),
    "cs": ("Dobré ráno", "Děkuji mnohokrát", "Dnes je hezké počasí", "Vlak odjíždí v {time}",
           "Koupil jsem {n} knih", "Přijedeme {date}", "Dům stojí u řeky"),
    "fi": ("Hyvää huomenta", "Kiitos paljon", "Tänään on kaunis sää",
           "Juna lähtee kello {time}", "Ostin {n} kirjaa", "Talo on joen rannalla"),
    "hu": ("Jó reggelt", "Köszönöm szépen", "Ma szép idő van", "A vonat {time} órakor indul",
           "Vettem {n} könyvet", "A ház a folyó mellett áll"),
    "tr": ("Günaydın", "Çok teşekkür ederim", "Bugün hava çok güzel",
           "Tren saat {time} kalkıyor", "{n} kitap aldım", "Ev nehrin yanında"),
    "el": ("Καλημέρα", "Ευχαριστώ πολύ", "Σήμερα ο καιρός είναι ωραίος",
           "Το τρένο φεύγει στις {time}", "Αγόρασα {n} βιβλία"),
    "hi": ("नमस्ते", "बहुत धन्यवाद", "आज मौसम अच्छा है", "ट्रेन {time} बजे चलती है",
           "मैंने {n} किताबें खरीदीं", "घर नदी के पास है"),
    "mr": ("नमस्कार", "धन्यवाद", "आज हवा छान आहे"),
    "te": ("నమస్కారం", "ధన్యవాదాలు"),
    "ta": ("வணக்கம்", "நன்றி"),
    "vi": ("Xin chào", "Cảm ơn rất nhiều", "Hôm nay trời đẹp", "Tàu chạy lúc {time}",
           "Tôi đã mua {n} quyển sách", "Ngôi nhà ở gần sông"),
    "id": ("Selamat pagi", "Terima kasih banyak", "Hari ini cuacanya cerah",
           "Kereta berangkat pukul {time}", "Saya membeli {n} buku", "Rumah itu dekat sungai"),
    "sw": ("Habari za asubuhi", "Asante sana", "Leo hali ya hewa ni nzuri",
           "Treni inaondoka saa {time}", "Nilinunua vitabu {n}", "Nyumba iko karibu na mto"),
    "cmn": ("你好", "非常感谢", "今天天气很好", "火车{time}出发", "我买了{n}本书", "房子在河边"),
}  # fmt: skip


def base_language(language: str) -> str:
    """The key of :data:`PHRASES` for a voice's language code (``"pt-br"`` -> ``"pt"``)."""
    base = language.lower().replace("_", "-").split("-")[0]
    return "cmn" if base == "zh" else base


def spoken_words(text: str) -> float:
    """Rough count of spoken words: a digit or a CJK character reads as about one word."""
    count = 0.0
    for token in text.split():
        digits = sum(character.isdigit() for character in token)
        wide = sum(ord(character) >= 0x3000 for character in token)
        count += digits + wide if digits or wide else 1
    return count


def _time(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}:{rng.choice((0, 5, 15, 20, 30, 45, 50)):02d}"


def _fill(template: str, rng: random.Random) -> str:
    """Replace the digit placeholders of a template with seeded values."""
    return template.format(
        n=rng.randint(2, 999),
        time=_time(rng),
        date=f"{rng.randint(1, 28)} {rng.randint(1, 12)} {rng.randint(1990, 2030)}",
    )


def _numeric_item(rng: random.Random) -> str:
    """A number, a clock time or a date in digits (the brief's "3 17 2026 12:45 581")."""
    kind = rng.randrange(3)
    if kind == 0:
        return str(rng.randint(2, 9999))
    if kind == 1:
        return _time(rng)
    return f"{rng.randint(1, 12)} {rng.randint(1, 28)} {rng.randint(1990, 2030)}"


def _optional(rng: random.Random, options: tuple[str, ...], chance: float = 0.5) -> str:
    return f" {rng.choice(options)}" if rng.random() < chance else ""


def english_sentence(rng: random.Random) -> str:
    """One statement or question from the grammar, capitalised and punctuated."""
    subject, (past, base), thing = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
    form = rng.randrange(7)
    if form == 0:
        text = f"{subject} {past} {thing}{_optional(rng, PLACES)}{_optional(rng, ADVERBS)}."
    elif form == 1:
        text = f"{subject} {past} {rng.randint(2, 99)} {rng.choice(PLURALS)}"
        text += f"{_optional(rng, PLACES)}."
    elif form == 2:
        text = f"at {_time(rng)}, {subject} {past} {thing}{_optional(rng, PLACES, 0.3)}."
    elif form == 3:
        date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1990, 2030)}"
        text = f"on {date}, {subject} {past} {thing}."
    elif form == 4:
        text = f"did {subject} {base} {thing}{_optional(rng, PLACES)}?"
    elif form == 5:
        text = f"how many {rng.choice(PLURALS)} did {subject} {base}{_optional(rng, ADVERBS)}?"
    else:
        text = f"why will {subject} {base} {thing} {rng.choice(ADVERBS)}?"
    return text[0].upper() + text[1:]


def english_text(rng: random.Random, words: float) -> str:
    """Grammar sentences until about ``words`` spoken words (at least one sentence)."""
    sentences = [english_sentence(rng)]
    while spoken_words(" ".join(sentences)) < words:
        sentences.append(english_sentence(rng))
    return " ".join(sentences)


def make_text(language: str, rng: random.Random, words: float, *, digits: bool = True) -> str:
    """A seeded text of about ``words`` spoken words for a voice of ``language``.

    Args:
        language: The voice's language code (``"en-us"``, ``"de"``, ``"cs"``, ...).
        rng: Seeded generator; the text depends only on its state and the arguments.
        words: Target length in spoken words (see :func:`spoken_words`).
        digits: Whether the voice's front end reads digits (festival's Russian voice does not).

    Returns:
        The text, one or more sentences.

    Raises:
        SqaError: ``digits`` is false and there are no digit-free phrases for the language.
    """
    base = base_language(language)
    if base == "en":
        return english_text(rng, words)
    phrases = [phrase for phrase in PHRASES.get(base, ()) if digits or "{" not in phrase]
    if not phrases and not digits:
        raise SqaError(f"no digit-free text for language {language!r}")
    pieces: list[str] = []
    last = ""
    while not pieces or spoken_words(" ".join(pieces)) < words:
        # Mostly phrases, so digits do not dominate the languages we have words for.
        if phrases and (not digits or rng.random() < 0.65):
            # Never the same phrase twice in a row ("Доброе утро. Доброе утро.").
            last = rng.choice([phrase for phrase in phrases if phrase != last] or phrases)
            pieces.append(_fill(last, rng))
        else:
            pieces.append(_numeric_item(rng))
    return ". ".join(pieces) + "."
