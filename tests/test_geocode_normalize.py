"""Normalisation and parsing rules of the geocoder, one test per rule (tiny hand-made vocabulary)."""

from __future__ import annotations

import pandas as pd
import pytest
from _numerals import int_to_chinese
from hypothesis import given, settings
from hypothesis import strategies as st

from gridplan.geocode.normalize import TextRules, cn_to_int, normalize_addresses, normalize_one, trie_regex
from gridplan.geocode.parse import Vocabulary, building_key, house_key, parse_addresses

LIB = pd.DataFrame(
    {
        "town_name": ["长安镇", "长安镇", "长安镇", "东城街道", "东城街道"],
        "community_name": ["乌沙社区", "三元里社区", "十八村", "城市花园社区", "长安社区"],
        "road_name": ["兴发大道", "十八巷", "五一路", "东门口路", "乌沙路"],
    }
)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_library(LIB)


def key(text: str, vocab: Vocabulary | None = None) -> str:
    return normalize_one(text, vocab.rules if vocab else TextRules())[0]


def extra(text: str, vocab: Vocabulary | None = None) -> str:
    return normalize_one(text, vocab.rules if vocab else TextRules())[1]


# --- text rules ---------------------------------------------------------------------------------


def test_fullwidth_to_halfwidth() -> None:
    assert key("兴发大道２３号Ａ栋") == "兴发大道23号A栋"


def test_punctuation_and_spaces_removed_hyphen_kept() -> None:
    assert key(" 长安镇，乌沙社区、兴发大道 23-1号。") == "长安镇乌沙社区兴发大道23-1号"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("二十三号", "23号"),
        ("三栋", "3栋"),
        ("一百零五号", "105号"),
        ("十号", "10号"),
        ("两千零一号", "2001号"),
        ("第三栋", "3栋"),
        ("一零五号", "105号"),
    ],
)
def test_chinese_numerals_before_units_become_digits(text: str, expected: str) -> None:
    assert key(text) == expected


def test_floor_written_in_numerals_goes_to_extra() -> None:
    assert (key("兴发大道5号十八层"), extra("兴发大道5号十八层")) == ("兴发大道5号", "18层")


def test_numerals_that_are_not_numbers_stay() -> None:
    # no unit after the numeral: a name, left alone even without a vocabulary
    assert key("三元里") == "三元里"
    assert key("十八村") == "十八村"


def test_vocabulary_names_with_numerals_are_protected(vocab: Vocabulary) -> None:
    # 十八巷 and 五一路 end in characters that are not units; 十八村二十三号: name kept, number converted
    assert key("十八村二十三号", vocab) == "十八村23号"
    assert key("长安镇三元里社区十八巷二号", vocab) == "长安镇三元里社区十八巷2号"
    assert key("五一路一号", vocab) == "五一路1号"


def test_protection_is_needed_for_names_that_look_like_numbers() -> None:
    # a road called 一号路 would lose its name to the numeral rule without the vocabulary
    assert key("一号路3号") == "1号路3号"
    assert (
        key(
            "一号路3号",
            Vocabulary.from_library(
                pd.DataFrame(
                    {"town_name": ["长安镇"], "community_name": ["乌沙社区"], "road_name": ["一号路"]}
                )
            ),
        )
        == "一号路3号"
    )


def test_numeral_only_names_are_not_protected() -> None:
    rules = TextRules.from_names(["十八", "十八村"])
    assert rules.protected == ("十八村",)
    assert normalize_one("二十八号", rules)[0] == "28号"


def test_province_and_city_prefixes_are_stripped_and_kept() -> None:
    assert normalize_one("广东省东莞市长安镇兴发大道1号", TextRules()) == (
        "长安镇兴发大道1号",
        "广东省东莞市",
    )
    assert normalize_one("东莞市长安镇兴发大道1号", TextRules()) == ("长安镇兴发大道1号", "东莞市")
    assert key("广西壮族自治区南宁市青秀区") == "青秀区"


def test_prefix_not_stripped_from_a_name_of_the_library(vocab: Vocabulary) -> None:
    # without the vocabulary "城市" is not a prefix anyway (one character before 市); a longer case:
    rules = TextRules.from_names(["花园城市社区"])
    assert normalize_one("花园城市社区1号", rules)[0] == "花园城市社区1号"
    assert normalize_one("花园城市社区1号", TextRules())[0] == "社区1号"
    assert key("城市花园社区", vocab) == "城市花园社区"


@pytest.mark.parametrize("noise", ["附近", "对面", "旁边", "门口", "3楼", "502房", "502室", "2单元", "二楼"])
def test_noise_removed_from_key_but_kept(noise: str) -> None:
    k, e = normalize_one(f"兴发大道5号{noise}", TextRules())
    assert k == "兴发大道5号"
    assert e == noise.replace("二楼", "2楼")


def test_noise_word_inside_a_library_name_is_kept(vocab: Vocabulary) -> None:
    assert normalize_one("东门口路5号门口", vocab.rules) == ("东门口路5号", "门口")


def test_hash_and_hao_lou() -> None:
    assert key("兴发大道5#") == "兴发大道5号"
    assert key("兴发大道5号3号楼") == "兴发大道5号3栋"


def test_normalize_addresses_maps_duplicates_and_missing() -> None:
    s = pd.Series(["兴发大道１号", None, "兴发大道１号", "兴发大道2号附近"], index=[10, 11, 12, 13])
    df = normalize_addresses(s)
    assert df.index.tolist() == [10, 11, 12, 13]
    assert df["key"].tolist() == ["兴发大道1号", "", "兴发大道1号", "兴发大道2号"]
    assert df["address_extra"].tolist() == ["", "", "", "附近"]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=9999))
def test_chinese_numerals_round_trip(n: int) -> None:
    assert cn_to_int(int_to_chinese(n)) == n
    assert key(f"兴发大道{int_to_chinese(n)}号") == f"兴发大道{n}号"


def test_trie_regex_prefers_longest() -> None:
    import re

    rx = re.compile(trie_regex(["乌沙", "乌沙社区", "乌沙村"]))
    assert rx.match("乌沙社区兴发").group(0) == "乌沙社区"
    assert rx.match("乌沙路").group(0) == "乌沙"


# --- vocabulary and parsing ---------------------------------------------------------------------


def test_aliases_come_from_the_library(vocab: Vocabulary) -> None:
    assert vocab.towns["长安"] == ("长安镇",)
    assert vocab.towns["东城"] == ("东城街道",)
    assert vocab.communities["乌沙村"] == ("长安镇/乌沙社区",)
    assert vocab.communities["十八社区"] == ("长安镇/十八村",)
    assert vocab.roads["兴发大路"] == ("兴发大道",)
    assert "人民路" not in vocab.roads


def test_unsafe_suffix_variant_is_not_added() -> None:
    lib = pd.DataFrame(
        {
            "town_name": ["长安镇"] * 2,
            "community_name": ["乌沙社区"] * 2,
            "road_name": ["兴发大道", "兴发大路"],
        }
    )
    v = Vocabulary.from_library(lib)
    assert v.roads["兴发大路"] == ("兴发大路",)
    assert v.roads["兴发大道"] == ("兴发大道",)


def parse(text: str, vocab: Vocabulary) -> dict:
    k = normalize_addresses([text], rules=vocab.rules)["key"]
    return parse_addresses(k, vocab).iloc[0].to_dict()


def test_parse_full_address(vocab: Vocabulary) -> None:
    p = parse("广东省东莞市长安乌沙村兴发大道二十三号3栋502房", vocab)
    assert (p["town"], p["community"], p["road"], p["house"], p["building"]) == (
        "长安镇",
        "长安镇/乌沙社区",
        "兴发大道",
        "23",
        "3",
    )


def test_parse_longer_name_wins_between_kinds(vocab: Vocabulary) -> None:
    # 长安社区 starts with the town form 长安; 乌沙路 starts with the community core 乌沙
    p = parse("长安社区乌沙路5号", vocab)
    assert (p["town"], p["community"], p["road"]) == ("", "东城街道/长安社区", "乌沙路")
    p = parse("长安镇乌沙路5号", vocab)
    assert (p["town"], p["community"], p["road"]) == ("长安镇", "", "乌沙路")


def test_parse_unknown_road_keeps_text_for_fuzzy(vocab: Vocabulary) -> None:
    p = parse("长安镇乌沙社区兴友大道5号", vocab)
    assert (p["road"], p["road_text"], p["house"]) == ("", "兴友大道", "5")


def test_parse_skips_unknown_leading_text(vocab: Vocabulary) -> None:
    p = parse("东莞长安镇乌沙社区兴发大道5号", vocab)
    assert (p["town"], p["road"], p["parse_extra"]) == ("长安镇", "兴发大道", "东莞")


def test_library_house_and_building_keys() -> None:
    assert house_key(pd.Series(["23号", "二十三号", "23", "23-1号", None])).tolist() == [
        "23",
        "23",
        "23",
        "23-1",
        "",
    ]
    assert building_key(pd.Series(["2栋", "2", "二幢", "B座", ""])).tolist() == ["2", "2", "2", "B", ""]
