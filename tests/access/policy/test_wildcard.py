"""The wildcard matcher against a plain reference, for any pattern and text."""

import time
from functools import cache

from hypothesis import example, given
from hypothesis import strategies as st

from access.policy import action_matches
from access.policy.wildcard import compile_patterns, wildcard_match

from .helpers import decide, policy, statement


def reference_match(pattern: str, text: str) -> bool:
    """IAM's wildcards by their definition: `*` any run (even empty), `?` one character."""

    @cache
    def matches_from(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        if pattern[i] == "*":
            return matches_from(i + 1, j) or (j < len(text) and matches_from(i, j + 1))
        return j < len(text) and pattern[i] in ("?", text[j]) and matches_from(i + 1, j + 1)

    return matches_from(0, 0)


# Few letters so that matches are common, plus every character a regex would misread.
ALPHABET = "ab/:*?.^$[](){}|\\+-\n"
texts = st.text(alphabet=ALPHABET.replace("*", "").replace("?", ""), max_size=30)
patterns = st.text(alphabet=ALPHABET, max_size=20)
anything = st.text(max_size=30)


@given(pattern=patterns, text=texts)
@example(pattern="*a*a*b", text="aaab")
@example(pattern="a?c", text="a\nc")
@example(pattern="[ab]", text="a")
@example(pattern="a.b", text="axb")
def test_the_matcher_agrees_with_the_reference_on_any_pattern_and_text(pattern, text):
    assert wildcard_match(pattern, text) == reference_match(pattern, text)


@given(pattern=anything, text=anything)
def test_the_matcher_agrees_with_the_reference_on_arbitrary_unicode(pattern, text):
    assert wildcard_match(pattern, text) == reference_match(pattern, text)


@given(data=st.data(), text=st.text(alphabet=ALPHABET, max_size=30))
def test_a_pattern_carved_out_of_a_text_always_matches_it(data, text):
    pattern = []
    position = 0
    while position < len(text):
        choice = data.draw(st.sampled_from(["keep", "any-one", "any-run"]))
        if choice == "keep":
            pattern.append(text[position])
            position += 1
        elif choice == "any-one":
            pattern.append("?")
            position += 1
        else:
            pattern.append("*")
            position += data.draw(st.integers(0, len(text) - position))
    assert wildcard_match("".join(pattern), text)


@given(many=st.lists(patterns, min_size=1, max_size=4), text=texts)
def test_a_list_of_patterns_matches_when_any_one_of_them_does(many, text):
    expected = any(reference_match(pattern, text) for pattern in many)
    assert (compile_patterns(many).fullmatch(text) is not None) == expected


@given(pattern=st.text(alphabet="sSmM:gGeEtT*?", max_size=12), action=texts)
def test_action_patterns_match_without_regard_to_case(pattern, action):
    expected = reference_match(pattern.lower(), action.lower())
    assert action_matches(pattern.upper(), action) == expected
    assert action_matches(pattern, action.swapcase()) == expected


def test_many_stars_against_a_long_near_miss_take_linear_time():
    # A naive translation (`.*a.*a...`) backtracks polynomially here and would not finish.
    started = time.perf_counter()
    assert not wildcard_match("*a" * 12 + "*b", "a" * 5_000)
    assert time.perf_counter() - started < 1.0


def test_star_crosses_slashes_and_colons_as_in_iam():
    assert wildcard_match("arn:aws:ssm:*:parameter/app/*", "arn:aws:ssm:eu:1:parameter/app/a/b")


region_patterns = st.text(alphabet="eu-w1*?", max_size=6)
account_patterns = st.text(alphabet="12*?", max_size=4)
path_patterns = st.text(alphabet="ab/.*?:[]$", max_size=12)
arn_patterns = st.builds(
    "arn:aws:ssm:{}:{}:parameter/{}".format, region_patterns, account_patterns, path_patterns
)
arns = st.builds(
    "arn:aws:ssm:{}:{}:parameter/{}".format,
    st.text(alphabet="eu-w1", max_size=6),
    st.text(alphabet="12", max_size=4),
    st.text(alphabet="ab/.:[]$", max_size=12),
)


@given(resources=st.lists(arn_patterns, min_size=1, max_size=3), resource=arns)
@example(resources=["arn:aws:ssm:*:*:parameter/a*"], resource="arn:aws:ssm:eu:1:parameter/ab")
@example(resources=["arn:aws:ssm:eu:1:parameter/a"], resource="arn:aws:ssm:eu:1:parameter/a")
def test_a_statement_matches_resources_exactly_as_the_reference_does(resources, resource):
    # Through every shortcut the statement takes: exact names, prefixes, substring checks.
    grant = policy(statement("Allow", "ssm:GetParameter", resources))
    expected = any(reference_match(pattern, resource) for pattern in resources)
    assert decide(grant, resource=resource).allowed is expected
