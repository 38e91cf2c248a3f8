"""Language identification of generated text: Russian passes, its Cyrillic neighbours do not."""

import pytest

from rag_pipeline.evaluate import language_id as lid
from rag_pipeline.evaluate.metrics.language import cyrillic_share

# The same answers (demo-rerank-study, demo-morph-tokenizer, demo-sparse-routing) in four languages.
RUSSIAN = [
    "Гибридный поиск с кросс-энкодером по 50 кандидатам повышает Recall@5 с 0,66 до 0,78, добавляя 41 мс задержки на вопрос.",
    "Авторы предлагают морфемно-ориентированную токенизацию, которая сокращает длину последовательности для русского языка.",
    "Модель RouteBlock выбирает блоки внимания с помощью обучаемого маршрутизатора и не теряет точности на длинном контексте.",
    "Лучше всего работают фрагменты по 512 токенов, а переранжирование более пятидесяти кандидатов не даёт заметного выигрыша.",
]
UKRAINIAN = [
    "Гібридний пошук із крос-енкодером на 50 кандидатах підвищує Recall@5 з 0,66 до 0,78, додаючи 41 мс затримки на запитання.",
    "Автори пропонують токенізацію, що враховує морфеми, яка скорочує довжину послідовності для російської мови.",
    "Модель RouteBlock обирає блоки уваги за допомогою навчуваного маршрутизатора і не втрачає точності на довгому контексті.",
    "Найкраще працюють фрагменти по 512 токенів, а переранжування понад п'ятдесяти кандидатів не дає помітного виграшу.",
]
BULGARIAN = [
    "Хибридното търсене с кръстосан енкодер върху 50 кандидата повишава Recall@5 от 0,66 на 0,78, като добавя 41 мс забавяне на въпрос.",
    "Авторите предлагат токенизация, съобразена с морфемите, която съкращава дължината на последователността за руския език.",
    "Моделът RouteBlock избира блоковете на вниманието с помощта на обучаем маршрутизатор и не губи точност при дълъг контекст.",
    "Най-добре работят фрагментите от 512 токена, а пренареждането на повече от петдесет кандидата не носи забележима печалба.",
]
ENGLISH = [
    "Hybrid retrieval followed by a cross-encoder over the top 50 candidates raises Recall@5 from 0.66 to 0.78.",
    "The authors propose a morpheme-aware tokenization that shortens sequences for Russian text.",
]


@pytest.mark.parametrize("text", RUSSIAN)
def test_russian_is_identified_as_russian(text):
    guess = lid.identify_language(text, "ru")
    assert guess.language == "ru", guess
    assert guess.confidence > 0.9


@pytest.mark.parametrize(("texts", "language"), [(UKRAINIAN, "uk"), (BULGARIAN, "bg"), (ENGLISH, "en")])
def test_ukrainian_bulgarian_and_english_are_not_russian(texts, language):
    for text in texts:
        assert lid.identify_language(text, "ru").language == language, text


def test_cyrillic_share_alone_cannot_tell_them_apart():
    # Why the identifier exists: every Ukrainian and Bulgarian answer is (almost) all Cyrillic.
    for text in UKRAINIAN + BULGARIAN:
        assert cyrillic_share(text).value > 0.85


def test_a_report_flags_ukrainian_and_bulgarian_answers_and_passes_russian_ones():
    russian = lid.language_report([(f"q{i}", text) for i, text in enumerate(RUSSIAN)], "ru")
    assert (russian.counts, russian.share, russian.offending) == ({"ru": 4}, 1.0, [])
    assert russian.passes(0.9)

    ukrainian = lid.language_report([(f"q{i}", text) for i, text in enumerate(UKRAINIAN)], "ru")
    assert ukrainian.counts == {"uk": 4} and ukrainian.share == 0.0
    assert not ukrainian.passes(0.9)
    assert ukrainian.offending == [(f"q{i}", "uk") for i in range(4)]

    mixed = lid.language_report(
        [("r0", RUSSIAN[0]), ("r1", RUSSIAN[1]), ("r2", RUSSIAN[2]), ("b0", BULGARIAN[0]), ("e0", ENGLISH[0])], "ru"
    )
    assert mixed.counts == {"ru": 3, "bg": 1, "en": 1}
    assert mixed.share == pytest.approx(0.6)
    assert mixed.passes(0.6) and not mixed.passes(0.9)
    assert mixed.offending == [("b0", "bg"), ("e0", "en")]


def test_text_too_short_to_identify_is_undetermined_and_left_out_of_the_share():
    assert lid.identify_language("Да.", "ru") == lid.LanguageGuess("und", 0.0)
    assert lid.identify_language("12.5 ± 0.3", "ru").language == "und"
    report = lid.language_report([("a", "Да."), ("b", RUSSIAN[0])], "ru")
    assert report.counts == {"ru": 1, "und": 1}
    assert (report.n_texts, report.n_identified, report.share) == (2, 1, 1.0)
    nothing = lid.language_report([("a", "Нет.")], "ru")
    assert nothing.share is None and nothing.passes(0.9)


def test_another_expected_language_is_added_to_the_candidates():
    assert lid.candidates_for("ru") == lid.CANDIDATE_LANGUAGES
    assert lid.candidates_for("pl")[0] == "pl"
    report = lid.language_report([("a", UKRAINIAN[1]), ("b", RUSSIAN[1])], "uk")
    assert report.counts == {"ru": 1, "uk": 1} and report.share == 0.5


def test_every_candidate_is_known_to_the_model_and_an_unknown_expected_language_is_refused():
    assert set(lid.CANDIDATE_LANGUAGES) <= set(lid.known_languages())
    with pytest.raises(ValueError, match=r"\['xx'\] unknown to py3langid"):
        lid.identify_language(RUSSIAN[0], "xx")


def test_the_signature_names_the_identifier_and_its_settings():
    signature = lid.identifier_signature("ru")
    assert signature["identifier"] == "py3langid" and signature["version"]
    assert signature["candidates"] == list(lid.CANDIDATE_LANGUAGES)
    assert (signature["min_letters"], signature["min_confidence"]) == (lid.MIN_LETTERS, lid.MIN_CONFIDENCE)
