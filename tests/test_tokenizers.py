"""Word and SentencePiece BPE tokenizers: round trips, truncation, unknown words, errors, determinism."""
import pytest
import torch

from t2ilab.data import synthbirds
from t2ilab.data.tokenizers import BPETokenizer, WordTokenizer


@pytest.fixture(scope="module")
def captions():
    return synthbirds.training_captions()


@pytest.fixture(scope="module")
def words(captions):
    return WordTokenizer.build(captions, max_length=40)


@pytest.fixture(scope="module")
def bpe():
    return synthbirds.bpe_tokenizer(vocab_size=512)


def test_word_round_trip(words, captions):
    for c in captions[:2000]:
        assert words.decode(words.encode(c)) == c
    ids = words.encode(captions[0])
    assert ids.shape == (40,) and ids.dtype == torch.long
    assert ids[0] == words.bos_id and words.eos_id in ids.tolist()


def test_a_long_text_is_refused_unless_truncation_is_asked_for(words):
    long_text = " ".join(["red"] * 100)
    with pytest.raises(ValueError, match="100 words and punctuation marks; this tokenizer reads at most 38"):
        words.encode(long_text)
    ids = words.encode(long_text, truncate=True)
    assert ids.shape == (40,) and ids[-1] == words.eos_id and (ids != words.pad_id).all()


@pytest.mark.parametrize("text, lost", [("a small bird 红色 crown", ["红", "色"]), ("a très red bird", ["è"]),
                                        ("a red bird 🐦", ["🐦"])])
def test_characters_no_word_is_made_of_are_not_dropped_silently(words, text, lost):
    with pytest.raises(ValueError, match="characters " + str(lost).replace("[", r"\[").replace("]", r"\]")):
        words.encode(text, on_unknown="error")
    with pytest.warns(UserWarning, match="dropped"):
        words.encode(text)


def test_a_batch_error_names_the_text_and_a_bare_string_is_refused(words):
    with pytest.raises(ValueError, match=r"text 1 of the batch \('   '\): empty prompt"):
        words.encode_batch(["a red bird", "   "])
    with pytest.raises(TypeError, match="a list of texts, got one string"):
        words.encode_batch("a red bird")


def test_word_unknowns(words):
    assert words.unknown_words("a zebra-striped bird") == ["zebra-striped"]
    with pytest.warns(UserWarning, match="zebra"):
        assert words.encode("a zebra bird")[2] == words.unk_id  # the default says so
    assert words.encode("a zebra bird", on_unknown="replace")[2] == words.unk_id
    with pytest.raises(ValueError, match="unknown words"):
        words.encode("a zebra bird", on_unknown="error")
    with pytest.warns(UserWarning, match="zebra"):
        words.encode("a zebra bird", on_unknown="warn")
    with pytest.raises(ValueError, match="on_unknown"):
        words.encode("a bird", on_unknown="ignore")


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(words, bpe, prompt):
    with pytest.raises(ValueError, match="empty prompt"):
        words.encode(prompt)
    with pytest.raises(ValueError, match="empty prompt"):
        bpe.encode(prompt)


def test_word_vocab_is_frequency_ordered(words, captions):
    assert words.vocab[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert "bird" in words.vocab[4:12]  # every caption mentions the bird
    assert 60 <= len(words) <= 400


def test_bpe_round_trip_and_size(bpe, captions):
    assert len(bpe) == 512
    for c in captions[:2000]:
        assert bpe.decode(bpe.encode(c)) == c
    assert len(bpe.encode(captions[0], max_length=5)) == 5
    # common words are single pieces, so a caption is about one piece per word
    pieces = sum(len(bpe.encode(c)) for c in captions[:500])
    word_count = sum(len(c.split()) for c in captions[:500])
    assert pieces < 1.6 * word_count


def test_bpe_is_deterministic(captions, bpe):
    again = BPETokenizer.train(captions, vocab_size=512)
    assert again.model_proto == bpe.model_proto


def test_bpe_unknowns(bpe):
    assert bpe.unknown_words("a bird with 7 wings") == ["7"]
    assert bpe.unknown_words("a zebra bird") == []  # BPE spells unseen words from known pieces


def test_encode_per_image_reads_every_caption_of_every_image(words):
    captions = [["a red bird", "a zebra bird"], ["a bird", "a red bird"]]
    ids = words.encode_per_image(captions)
    assert ids.shape == (2, 2, words.max_length)
    assert torch.equal(ids[1, 1], words.encode("a red bird")) and ids[0, 1, 2] == words.unk_id  # unknown: <unk>
