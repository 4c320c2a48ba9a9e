#include "runtime/grounding.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "vision/qwen_preprocess.h"

namespace vlm::runtime {
namespace {

bool has_note(const GroundedBox& b, const std::string& text) {
  for (const auto& n : b.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

bool any_contains(const std::vector<std::string>& v, const std::string& text) {
  for (const auto& s : v)
    if (s.find(text) != std::string::npos) return true;
  return false;
}

// Qwen2.5-VL: 1000x500 with the hub bounds (3136..12845056, factor 28):
// round(1000/28) = round(35.71) = 36 -> 1008, round(500/28) = round(17.86) = 18 -> 504.
// A box in that 1008x504 frame maps back with x*1000/1008 and y*500/504:
//   100*1000/1008 =  99.2063   50*500/504 =  49.6032
//   500*1000/1008 = 496.0317  300*500/504 = 297.6190
TEST(Grounding, Qwen25WorkedExample1000x500) {
  auto s = smart_resize(500, 1000, 28, 3136, 12845056);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->width, 1008);
  EXPECT_EQ(s->height, 504);
  const GroundingFrame f{1000, 500, 1008, 504};
  auto r = parse_grounding(R"([{"bbox_2d": [100, 50, 500, 300], "label": "dog"}])", BoxFormat::Qwen25VL, f);
  ASSERT_EQ(r.boxes.size(), 1u);
  const auto& b = r.boxes[0];
  EXPECT_EQ(b.label, "dog");
  EXPECT_NEAR(b.x1, 99.2063, 1e-4);
  EXPECT_NEAR(b.y1, 49.6032, 1e-4);
  EXPECT_NEAR(b.x2, 496.0317, 1e-4);
  EXPECT_NEAR(b.y2, 297.6190, 1e-4);
  EXPECT_TRUE(b.notes.empty());
  EXPECT_TRUE(r.unparsed.empty());
  EXPECT_EQ(boxes_to_json(r), "[\n  {\"label\": \"dog\", \"box\": [99.2, 49.6, 496, 297.6]}\n]");
  // The whole resized frame is the whole image.
  r = parse_grounding(R"([{"bbox_2d": [0, 0, 1008, 504], "label": "all"}])", BoxFormat::Qwen25VL, f);
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 1000);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 500);
}

// The same answer read with the wrong input size lands elsewhere: the reason
// the frame carries input_w/input_h.
TEST(Grounding, Qwen25DependsOnInputSize) {
  const std::string a = R"([{"bbox_2d": [500, 250, 600, 300], "label": "x"}])";
  auto right = parse_grounding(a, BoxFormat::Qwen25VL, {1000, 500, 1008, 504});
  auto wrong = parse_grounding(a, BoxFormat::Qwen25VL, {1000, 500, 1000, 500});
  ASSERT_EQ(right.boxes.size(), 1u);
  ASSERT_EQ(wrong.boxes.size(), 1u);
  EXPECT_NEAR(right.boxes[0].x1, 496.0317, 1e-4);  // 500*1000/1008
  EXPECT_DOUBLE_EQ(wrong.boxes[0].x1, 500);
}

// Qwen2-VL on 640x480: x/1000*640, y/1000*480.
//   (100,200) -> (64, 96); (500,800) -> (320, 384); (600,100) -> (384, 48); (900,400) -> (576, 192)
TEST(Grounding, Qwen2VLTokens640x480) {
  const GroundingFrame f{640, 480, 644, 476};  // the input size must not matter
  auto r = parse_grounding(
      "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(100,200),(500,800)<|box_end|> and "
      "<|object_ref_start|>cats<|object_ref_end|><|box_start|>(600,100),(900,400)<|box_end|>"
      "<|box_start|>(0,0),(1000,1000)<|box_end|>",
      BoxFormat::Qwen2VL, f);
  ASSERT_EQ(r.boxes.size(), 3u);
  EXPECT_EQ(r.format, BoxFormat::Qwen2VL);
  EXPECT_EQ(r.boxes[0].label, "the dog");
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 64);
  EXPECT_DOUBLE_EQ(r.boxes[0].y1, 96);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 320);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 384);
  // Several boxes after one ref share its label.
  EXPECT_EQ(r.boxes[1].label, "cats");
  EXPECT_EQ(r.boxes[2].label, "cats");
  EXPECT_DOUBLE_EQ(r.boxes[1].x1, 384);
  EXPECT_DOUBLE_EQ(r.boxes[1].y1, 48);
  EXPECT_DOUBLE_EQ(r.boxes[1].x2, 576);
  EXPECT_DOUBLE_EQ(r.boxes[1].y2, 192);
  EXPECT_DOUBLE_EQ(r.boxes[2].x2, 640);
  EXPECT_DOUBLE_EQ(r.boxes[2].y2, 480);
  EXPECT_TRUE(r.unparsed.empty());
}

TEST(Grounding, Qwen2VLSeveralBoxesInOneElementAndSpaces) {
  auto r = parse_grounding("<|object_ref_start|>birds<|object_ref_end|><|box_start|>( 0 , 0 ) , ( 100 , 100 ),(200,200),(300,300)<|box_end|>",
                           BoxFormat::Qwen2VL, {1000, 1000, 1008, 1008});
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.boxes[1].x1, 200);
  EXPECT_DOUBLE_EQ(r.boxes[1].y2, 300);
  EXPECT_EQ(r.boxes[1].label, "birds");
}

// A quad's four corners (100,100),(300,120),(310,200),(90,190) bound
// x 90..310, y 100..200; on 1000x1000 that is the same numbers.
TEST(Grounding, Qwen2VLQuadToBoundingBox) {
  auto r = parse_grounding("<|object_ref_start|>SALE<|object_ref_end|><|quad_start|>(100,100),(300,120),(310,200),(90,190)<|quad_end|>",
                           BoxFormat::Qwen2VL, {1000, 1000, 1008, 1008});
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_EQ(r.boxes[0].label, "SALE");
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 90);
  EXPECT_DOUBLE_EQ(r.boxes[0].y1, 100);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 310);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 200);
  EXPECT_TRUE(has_note(r.boxes[0], "quad"));
}

// Qwen3-VL: JSON keys of Qwen2.5-VL, frame of Qwen2-VL. On 640x480:
//   [250, 500, 750, 1000] -> [160, 240, 480, 480]; point [500, 500] -> (320, 240).
TEST(Grounding, Qwen3VLRelativeJson) {
  const GroundingFrame f{640, 480, 640, 480};
  auto r = parse_grounding(R"([{"bbox_2d": [250, 500, 750, 1000], "label": "cup"}, {"point_2d": [500, 500], "label": "centre"}])",
                           BoxFormat::Qwen3VL, f);
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 160);
  EXPECT_DOUBLE_EQ(r.boxes[0].y1, 240);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 480);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 480);
  EXPECT_TRUE(r.boxes[1].is_point);
  EXPECT_DOUBLE_EQ(r.boxes[1].x1, 320);
  EXPECT_DOUBLE_EQ(r.boxes[1].y1, 240);
  EXPECT_EQ(r.boxes[1].x1, r.boxes[1].x2);
  // The resized size does not enter: a different input frame gives the same boxes.
  auto r2 = parse_grounding(R"([{"bbox_2d": [250, 500, 750, 1000]}])", BoxFormat::Qwen3VL, {640, 480, 1024, 768});
  ASSERT_EQ(r2.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r2.boxes[0].x1, 160);
}

// Qwen-VL v1 on 800x600: (0,0),(500,500) -> (0,0),(400,300); (250,100),(750,900) -> (200,60),(600,540).
TEST(Grounding, QwenVLv1Tags) {
  auto r = parse_grounding("Found <ref>a cat</ref><box>(0,0),(500,500)</box> and <ref>a hat</ref><box>(250,100),(750,900)</box>.",
                           BoxFormat::QwenVL, {800, 600, 812, 588});
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_EQ(r.boxes[0].label, "a cat");
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 400);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 300);
  EXPECT_EQ(r.boxes[1].label, "a hat");
  EXPECT_DOUBLE_EQ(r.boxes[1].x1, 200);
  EXPECT_DOUBLE_EQ(r.boxes[1].y1, 60);
  EXPECT_DOUBLE_EQ(r.boxes[1].x2, 600);
  EXPECT_DOUBLE_EQ(r.boxes[1].y2, 540);
  r = parse_grounding("<ref>sign</ref><quad>(10,10),(90,10),(90,50),(10,50)</quad>", BoxFormat::QwenVL, {1000, 1000, 1008, 1008});
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 90);
  EXPECT_DOUBLE_EQ(r.boxes[0].y2, 50);
}

// Qwen2.5-VL point on 1000x500 / 1008x504: (504, 252) -> (500, 250).
TEST(Grounding, Qwen25Point) {
  auto r = parse_grounding(R"({"point_2d": [504, 252], "label": "nose"})", BoxFormat::Qwen25VL, {1000, 500, 1008, 504});
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_TRUE(r.boxes[0].is_point);
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 500);
  EXPECT_DOUBLE_EQ(r.boxes[0].y1, 250);
  EXPECT_EQ(boxes_to_json(r), "[\n  {\"label\": \"nose\", \"box\": [500, 250, 500, 250], \"point\": [500, 250]}\n]");
}

TEST(Grounding, CodeFenceProseTrailingCommasSingleQuotesStrings) {
  const GroundingFrame f{1008, 504, 1008, 504};  // identity map keeps the numbers readable
  auto r = parse_grounding(
      "Sure! Here are the objects:\n```json\n[\n  {'bbox_2d': ['10', '20', '30.5', 40], 'label': 'a',},\n"
      "  {bbox_2d: [50, 60, 70, 80], \"label\": \"it's b\", \"score\": \"0.75\"},\n]\n```\nLet me know if you need more.",
      BoxFormat::Qwen25VL, f);
  ASSERT_EQ(r.boxes.size(), 2u) << (r.unparsed.empty() ? "" : r.unparsed[0]);
  EXPECT_TRUE(r.unparsed.empty());
  EXPECT_EQ(r.boxes[0].label, "a");
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 10);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 30.5);
  EXPECT_TRUE(has_note(r.boxes[0], "strings"));
  EXPECT_EQ(r.boxes[1].label, "it's b");
  ASSERT_TRUE(r.boxes[1].score.has_value());
  EXPECT_DOUBLE_EQ(*r.boxes[1].score, 0.75);
  EXPECT_EQ(boxes_to_json(r),
            "[\n  {\"label\": \"a\", \"box\": [10, 20, 30.5, 40]},\n"
            "  {\"label\": \"it's b\", \"box\": [50, 60, 70, 80], \"score\": 0.75}\n]");
}

TEST(Grounding, TruncatedListKeepsCompleteObjects) {
  const GroundingFrame f{1008, 504, 1008, 504};
  for (const char* tail : {R"({"bbox_2d": [5, 6, 7)", R"({"bbox_2d": [5, 6, 7, 8], "label": "ca)", R"({"bb)", "{", "{\"bbox_2d\": [1, 2, 3, 4"}) {
    const std::string a = std::string("```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"one\"}, {\"bbox_2d\": [11, 12, 13, 14], \"label\": \"two\"}, ") + tail;
    auto r = parse_grounding(a, BoxFormat::Qwen25VL, f);
    ASSERT_EQ(r.boxes.size(), 2u) << tail;
    EXPECT_EQ(r.boxes[1].label, "two");
    ASSERT_EQ(r.unparsed.size(), 1u) << tail;
    EXPECT_NE(r.unparsed[0].find("truncated"), std::string::npos) << r.unparsed[0];
  }
  // A number at the very end may have lost digits: not taken.
  auto r = parse_grounding(R"([{"bbox_2d": [1, 2, 3, 40)", BoxFormat::Qwen25VL, f);
  EXPECT_TRUE(r.boxes.empty());
  EXPECT_EQ(r.unparsed.size(), 1u);
}

TEST(Grounding, BrokenObjectReportedOthersKept) {
  const GroundingFrame f{1008, 504, 1008, 504};
  auto r = parse_grounding(R"([{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [1, 2, x, 4], "label": "b"}, {"bbox_2d": [9, 9, 19, 19], "label": "c"}])",
                           BoxFormat::Qwen25VL, f);
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_EQ(r.boxes[0].label, "a");
  EXPECT_EQ(r.boxes[1].label, "c");
  ASSERT_EQ(r.unparsed.size(), 1u);
  EXPECT_NE(r.unparsed[0].find("unexpected"), std::string::npos) << r.unparsed[0];
  // Wrong arity is reported, not guessed.
  r = parse_grounding(R"([{"bbox_2d": [1, 2, 3], "label": "short"}, {"point_2d": [1, 2, 3, 4], "label": "p"}])", BoxFormat::Qwen25VL, f);
  EXPECT_TRUE(r.boxes.empty());
  ASSERT_EQ(r.unparsed.size(), 2u);
  EXPECT_TRUE(any_contains(r.unparsed, "box needs 4 values, got 3"));
  EXPECT_TRUE(any_contains(r.unparsed, "point needs 2 values, got 4"));
}

TEST(Grounding, GarbageGivesNothing) {
  const GroundingFrame f{640, 480, 644, 476};
  for (const char* a : {"", "There is no dog in this image.", "[1, 2, 3]", "{}", "[[[[", "{{{{}}}", "```json\n```",
                        "see [figure 1] and {braces}", "<|box_start|><|box_end|>", "\xff\xfe\x00"}) {
    for (BoxFormat fmt : {BoxFormat::Auto, BoxFormat::Qwen2VL, BoxFormat::Qwen25VL, BoxFormat::Qwen3VL, BoxFormat::QwenVL}) {
      auto r = parse_grounding(a, fmt, f);
      EXPECT_TRUE(r.boxes.empty()) << a;
      EXPECT_EQ(boxes_to_json(r), "[]");
    }
  }
  auto r = parse_grounding("<|box_start|>(1,2),(3,four)<|box_end|>", BoxFormat::Qwen2VL, f);
  EXPECT_TRUE(r.boxes.empty());
  EXPECT_EQ(r.unparsed.size(), 1u);
}

// Qwen2-VL on 500x500 (x/2): (1040,-5),(300,200): x1 1040 -> 1000, y1 -5 -> 0,
// then x1 1000 > x2 300 is swapped: box (300,0)-(1000,200) -> (150,0)-(500,100).
TEST(Grounding, OutOfRangeAndReversedAreClampedAndReported) {
  auto r = parse_grounding("<|object_ref_start|>x<|object_ref_end|><|box_start|>(1040,-5),(300,200)<|box_end|>",
                           BoxFormat::Qwen2VL, {500, 500, 504, 504});
  ASSERT_EQ(r.boxes.size(), 1u);
  const auto& b = r.boxes[0];
  EXPECT_DOUBLE_EQ(b.x1, 150);
  EXPECT_DOUBLE_EQ(b.y1, 0);
  EXPECT_DOUBLE_EQ(b.x2, 500);
  EXPECT_DOUBLE_EQ(b.y2, 100);
  EXPECT_TRUE(has_note(b, "clamped x1 from 1040 to 1000")) << ::testing::PrintToString(b.notes);
  EXPECT_TRUE(has_note(b, "clamped y1 from -5 to 0"));
  EXPECT_TRUE(has_note(b, "swapped reversed corners"));
  // Qwen2.5-VL clamps to the resized frame: x2 1100 -> 1008 (then 1000 px), y reversed.
  r = parse_grounding(R"([{"bbox_2d": [504, 400, 1100, 100]}])", BoxFormat::Qwen25VL, {1000, 500, 1008, 504});
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 1000);
  EXPECT_DOUBLE_EQ(r.boxes[0].x1, 500);
  EXPECT_NEAR(r.boxes[0].y1, 100 * 500.0 / 504, 1e-9);
  EXPECT_NEAR(r.boxes[0].y2, 400 * 500.0 / 504, 1e-9);
  EXPECT_TRUE(has_note(r.boxes[0], "clamped x2 from 1100 to 1008"));
  EXPECT_TRUE(has_note(r.boxes[0], "y1 400 > y2 100"));
  // Clean boxes carry no notes.
  r = parse_grounding(R"([{"bbox_2d": [1, 2, 3, 4]}])", BoxFormat::Qwen3VL, {100, 100, 112, 112});
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_TRUE(r.boxes[0].notes.empty());
}

TEST(Grounding, AutoDetection) {
  const GroundingFrame f{1000, 500, 1008, 504};
  auto r = parse_grounding("<|object_ref_start|>a<|object_ref_end|><|box_start|>(0,0),(500,500)<|box_end|>", BoxFormat::Auto, f);
  EXPECT_EQ(r.format, BoxFormat::Qwen2VL);
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 500);
  r = parse_grounding("<ref>a</ref><box>(0,0),(500,500)</box>", BoxFormat::Auto, f);
  EXPECT_EQ(r.format, BoxFormat::QwenVL);
  r = parse_grounding(R"([{"bbox_2d": [0, 0, 504, 252]}])", BoxFormat::Auto, f);
  EXPECT_EQ(r.format, BoxFormat::Qwen25VL);
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.boxes[0].x2, 500);  // 504 * 1000/1008
  EXPECT_FALSE(r.notes.empty());        // the guess is stated
  r = parse_grounding("nothing", BoxFormat::Auto, f);
  EXPECT_EQ(r.format, BoxFormat::Auto);
}

// Decoded with skip_special_tokens=True a Qwen2-VL answer loses its wrappers.
TEST(Grounding, BarePairsWithoutSpecialTokens) {
  auto r = parse_grounding("the red car(100,200),(300,400)\nthe bus(500,500),(900,700)", BoxFormat::Qwen2VL, {1000, 1000, 1008, 1008});
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_EQ(r.boxes[0].label, "the red car");
  EXPECT_EQ(r.boxes[1].label, "the bus");
  EXPECT_DOUBLE_EQ(r.boxes[1].x2, 900);
  EXPECT_TRUE(has_note(r.boxes[0], "skip_special_tokens"));
  // Not for the JSON families: their answers are never bare pairs.
  EXPECT_TRUE(parse_grounding("car(1,2),(3,4)", BoxFormat::Qwen25VL, {1000, 1000, 1008, 1008}).boxes.empty());
}

TEST(Grounding, UnclosedTags) {
  const GroundingFrame f{1000, 1000, 1008, 1008};
  // Cut off at the end: the last number may be incomplete.
  auto r = parse_grounding("<|object_ref_start|>a<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|><|object_ref_start|>b<|object_ref_end|><|box_start|>(5,6),(7,8",
                           BoxFormat::Qwen2VL, f);
  ASSERT_EQ(r.boxes.size(), 1u);
  ASSERT_EQ(r.unparsed.size(), 1u);
  EXPECT_NE(r.unparsed[0].find("truncated"), std::string::npos);
  // A missing close followed by another box: the first box is complete.
  r = parse_grounding("<|box_start|>(1,2),(3,4)<|box_start|>(5,6),(7,8)<|box_end|>", BoxFormat::Qwen2VL, f);
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_TRUE(has_note(r.boxes[0], "missing <|box_end|>"));
  r = parse_grounding("<|object_ref_start|>a lonely ref", BoxFormat::Qwen2VL, f);
  EXPECT_TRUE(r.boxes.empty());
  EXPECT_EQ(r.unparsed.size(), 1u);
}

TEST(Grounding, NestedObjectsAndOtherLabelKeys) {
  auto r = parse_grounding(R"({"objects": [{"bbox_2d": [0, 0, 10, 10], "text_content": "EXIT"}, {"bbox_2d": [[20, 20], [30, 30]], "label": 7}]})",
                           BoxFormat::Qwen3VL, {1000, 1000, 1024, 1024});
  ASSERT_EQ(r.boxes.size(), 2u);
  EXPECT_EQ(r.boxes[0].label, "EXIT");
  EXPECT_EQ(r.boxes[1].label, "7");
  EXPECT_DOUBLE_EQ(r.boxes[1].x1, 20);
  EXPECT_DOUBLE_EQ(r.boxes[1].y2, 30);
}

TEST(Grounding, FrameWithoutSizesReportsInsteadOfGuessing) {
  auto r = parse_grounding(R"([{"bbox_2d": [1, 2, 3, 4], "label": "a"}])", BoxFormat::Qwen25VL, {640, 480, 0, 0});
  EXPECT_TRUE(r.boxes.empty());
  ASSERT_EQ(r.unparsed.size(), 1u);
  EXPECT_NE(r.unparsed[0].find("input size"), std::string::npos);
  // Relative formats need only the image size.
  EXPECT_EQ(parse_grounding(R"([{"bbox_2d": [1, 2, 3, 4]}])", BoxFormat::Qwen3VL, {640, 480, 0, 0}).boxes.size(), 1u);
  EXPECT_TRUE(parse_grounding(R"([{"bbox_2d": [1, 2, 3, 4]}])", BoxFormat::Qwen3VL, {0, 0, 0, 0}).boxes.empty());
}

TEST(Grounding, JsonOutputIsValidForAnyLabel) {
  GroundingResult r;
  GroundedBox b;
  b.label = "q\"uo\\te\n\x01 caf\xc3\xa9 bad\xff\xc3 end";
  b.x1 = -0.01;
  b.y1 = 0.04;
  b.x2 = 12.36;
  b.y2 = 1e6 / 3;
  b.score = 0.123456789;
  r.boxes.push_back(b);
  const std::string j = boxes_to_json(r);
  auto parsed = nlohmann::json::parse(j, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << j;
  EXPECT_EQ(parsed[0]["box"][0].get<double>(), 0);
  EXPECT_EQ(parsed[0]["box"][2].get<double>(), 12.4);
  EXPECT_EQ(parsed[0]["box"][3].get<double>(), 333333.3);
  EXPECT_NEAR(parsed[0]["score"].get<double>(), 0.123457, 1e-9);
  EXPECT_NE(parsed[0]["label"].get<std::string>().find("caf\xc3\xa9"), std::string::npos);
}

TEST(Grounding, FormatNames) {
  EXPECT_EQ(format_for_model_type("qwen2_vl"), BoxFormat::Qwen2VL);
  EXPECT_EQ(format_for_model_type("qwen2_5_vl"), BoxFormat::Qwen25VL);
  EXPECT_EQ(format_for_model_type("qwen3_vl"), BoxFormat::Qwen3VL);
  EXPECT_EQ(format_for_model_type("qwen3_vl_moe"), BoxFormat::Qwen3VL);
  EXPECT_EQ(format_for_model_type("llava"), BoxFormat::Auto);
  for (BoxFormat f : {BoxFormat::Auto, BoxFormat::QwenVL, BoxFormat::Qwen2VL, BoxFormat::Qwen25VL, BoxFormat::Qwen3VL})
    EXPECT_EQ(parse_box_format(box_format_name(f)), f);
  EXPECT_EQ(parse_box_format("Qwen2_5_VL"), BoxFormat::Qwen25VL);
  EXPECT_EQ(parse_box_format("qwen25vl"), BoxFormat::Qwen25VL);
  EXPECT_FALSE(parse_box_format("yolo").has_value());
}

TEST(Grounding, FrameFromConfigAndGrid) {
  QwenImageConfig cfg;
  cfg.min_pixels = 3136;
  cfg.max_pixels = 12845056;
  auto f = grounding_frame(cfg, 1000, 500);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->input_w, 1008);
  EXPECT_EQ(f->input_h, 504);
  // 320x240 under max 20000: beta = sqrt(76800/20000) = 1.9596;
  // floor(240/1.9596/28) = 4 -> 112, floor(320/1.9596/28) = 5 -> 140.
  f = grounding_frame(cfg, 320, 240, -1, 20000);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->input_w, 140);
  EXPECT_EQ(f->input_h, 112);
  cfg.do_resize = false;
  f = grounding_frame(cfg, 321, 239);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->input_w, 321);
  EXPECT_FALSE(grounding_frame(cfg, 0, 10).ok());
  // The bundled Qwen2.5-VL fixture: 320x240 -> round(11.43)*28 = 308, round(8.57)*28 = 252.
  f = load_grounding_frame(VLM_TESTDATA "/fixtures/qwen2_5_vl/model", 320, 240);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->input_w, 308);
  EXPECT_EQ(f->input_h, 252);
  EXPECT_FALSE(load_grounding_frame("/nonexistent", 320, 240).ok());
  const GroundingFrame g = frame_from_grid(320, 240, 18, 22, 14);
  EXPECT_EQ(g.input_w, 308);
  EXPECT_EQ(g.input_h, 252);
}

// Answers built to make a naive scanner quadratic (every tag unclosed, every
// bracket a fresh parse attempt). The parser is linear; a regression shows up as
// this test running into ctest's timeout, not as a timed assertion (shared machines).
TEST(Grounding, AdversarialInputsAreParsed) {
  auto rep = [](const std::string& p, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += p;
    return s;
  };
  const std::vector<std::string> inputs = {
      rep("<|box_start|>", 20000), rep("<|object_ref_start|>", 20000), rep("<ref><box>", 20000), rep("[", 200000),
      rep("{", 200000), rep("['", 100000), rep("[\"", 100000), rep("[", 60) + "\"" + rep("a", 200000),
      rep("x(1,2),(3,4)", 20000), rep("{\"bbox_2d\": [1,2,3,4]},", 20000), rep("{\"bbox_2d\": [1,2,", 20000)};
  size_t boxes = 0;
  for (const auto& in : inputs)
    for (BoxFormat fmt : {BoxFormat::Auto, BoxFormat::Qwen25VL}) boxes += parse_grounding(in, fmt, {640, 480, 644, 476}).boxes.size();
  EXPECT_GT(boxes, 40000u);  // the repeated well-formed objects are all found
}

// Random answers assembled from the pieces the parsers react to, plus random
// bytes: nothing may crash, and every box that comes out must be well formed.
TEST(Grounding, FuzzishNeverCrashes) {
  const std::vector<std::string> pieces = {
      "[", "]", "{", "}", ",", ":", "\"", "'", "\"bbox_2d\"", "'point_2d'", "\"label\"", "\"dog\"", " ", "\n",
      "1", "-5", "1040", "3.5", "1e999", "\"12\"", "```json", "```", "<|box_start|>", "<|box_end|>",
      "<|object_ref_start|>", "<|object_ref_end|>", "<|quad_start|>", "<|quad_end|>", "<ref>", "</ref>",
      "<box>", "</box>", "(", ")", "(10,20),(30,40)", "\\u12", "\\", "null", "tru", "\xc3", "\xff"};
  std::mt19937 rng(1234);
  const GroundingFrame frames[] = {{640, 480, 644, 476}, {1, 1, 28, 28}, {5000, 20, 5012, 28}};
  for (int iter = 0; iter < 20000; ++iter) {
    std::string a;
    const int n = int(rng() % 40);
    for (int k = 0; k < n; ++k) {
      if (rng() % 8 == 0) a += char(rng() % 256);
      else a += pieces[rng() % pieces.size()];
    }
    const GroundingFrame& f = frames[iter % 3];
    const BoxFormat fmt = BoxFormat(iter % 5);
    auto r = parse_grounding(a, fmt, f);
    for (const auto& b : r.boxes) {
      ASSERT_LE(b.x1, b.x2) << a;
      ASSERT_LE(b.y1, b.y2) << a;
      ASSERT_GE(b.x1, 0) << a;
      ASSERT_GE(b.y1, 0) << a;
      ASSERT_LE(b.x2, f.orig_w) << a;
      ASSERT_LE(b.y2, f.orig_h) << a;
    }
    const std::string j = boxes_to_json(r);
    ASSERT_FALSE(nlohmann::json::parse(j, nullptr, false).is_discarded()) << a << "\n" << j;
  }
}

}  // namespace
}  // namespace vlm::runtime
