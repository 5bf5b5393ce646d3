import os
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadylink.errors import InvalidInput
from steadylink.links.codes import (
    ALPHABET,
    RESERVED,
    SystemRandom,
    check_custom_code,
    fold,
    generate_code,
    looks_like_code,
)


def test_generated_codes_have_the_length_and_no_look_alikes() -> None:
    codes = {generate_code(7, SystemRandom()) for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == 7
        assert not set(code) & set("0Oo1lIi")


def test_system_random_draws_every_character_about_equally() -> None:
    rng = SystemRandom()
    counts = Counter(rng.choice("abc") for _ in range(30_000))
    assert set(counts) == set("abc")
    assert all(9_000 < n < 11_000 for n in counts.values())


def test_a_forked_child_never_reuses_the_parents_random_bytes() -> None:
    rng = SystemRandom()
    rng.choice(ALPHABET)  # the parent's pool is full now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its draws, then out at once
        os.write(write, "".join(rng.choice(ALPHABET) for _ in range(64)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 64
    assert child != "".join(rng.choice(ALPHABET) for _ in range(64))


def test_alphabet_has_no_look_alikes_and_no_duplicates() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert not set(ALPHABET) & set("0Oo1lIi")


@pytest.mark.parametrize("code", ["a", "Sale-2026", "x_y", "A" * 64])
def test_custom_codes_that_are_allowed(code: str) -> None:
    assert check_custom_code(code) == code


@pytest.mark.parametrize(
    "code",
    ["", "a/b", "..", "../etc", "a b", "tab\t", "é", "ａ", "\u202e", "x" * 65, "a.b", "null\x00"],
)
def test_custom_codes_that_are_refused(code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_custom_code(code)
    assert info.value.field == "code"


@pytest.mark.parametrize("word", sorted(RESERVED))
def test_reserved_words_are_refused_in_any_case(word: str) -> None:
    with pytest.raises(InvalidInput, match="reserved|only letters"):
        check_custom_code(word.upper())


@given(st.text(min_size=1, max_size=80))
def test_a_code_is_accepted_only_if_the_hot_path_would_route_it(text: str) -> None:
    try:
        check_custom_code(text)
    except InvalidInput:
        return
    assert looks_like_code(text)
    assert fold(text) not in RESERVED
