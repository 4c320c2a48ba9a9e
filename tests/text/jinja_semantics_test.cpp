// jinja2 semantics as transformers configures them (trim_blocks, lstrip_blocks,
// loopcontrols, sandbox), checked one feature at a time. Expected strings are
// what jinja2 prints, derived from its lexer/runtime rules.
#include "text/chat_template.h"

#include <gtest/gtest.h>

namespace vlm::text {
namespace {

using ojson = nlohmann::ordered_json;

std::string R(const std::string& tmpl, const ojson& ctx = ojson::object()) {
  auto t = ChatTemplate::parse(tmpl);
  if (!t.ok()) return "PARSE ERROR: " + t.error().message;
  auto r = t->render(ctx);
  if (!r.ok()) return "RENDER ERROR: " + r.error().message;
  return *r;
}

// ------------------------------------------------------------ whitespace ----

TEST(JinjaWhitespace, TrimBlocksRemovesTheNewlineAfterABlockTag) {
  EXPECT_EQ(R("{% if true %}\nyes\n{% endif %}\nno"), "yes\nno");
  // ... but not after a variable tag.
  EXPECT_EQ(R("{{ 'a' }}\nb"), "a\nb");
  // Only one newline, and only right after the tag.
  EXPECT_EQ(R("{% if true %}\n\nx{% endif %}"), "\nx");
  EXPECT_EQ(R("{% if true %} \nx{% endif %}"), " \nx");
  // Comments trim too.
  EXPECT_EQ(R("{# note #}\nx"), "x");
}

TEST(JinjaWhitespace, LstripBlocksRemovesIndentBeforeABlockTag) {
  EXPECT_EQ(R("  {% if true %}\n  x\n  {% endif %}\n"), "  x\n");
  EXPECT_EQ(R("a\n\t {% if true %}b{% endif %}"), "a\nb");
  // Not when other text precedes the tag on its line.
  EXPECT_EQ(R("a  {% if true %}b{% endif %}"), "a  b");
  // Not before variable tags.
  EXPECT_EQ(R("  {{ 'x' }}"), "  x");
  // Comments are lstripped like blocks.
  EXPECT_EQ(R("a\n    {# c #}\nb"), "a\nb");
}

TEST(JinjaWhitespace, PlusDisablesTrimAndLstrip) {
  EXPECT_EQ(R("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(R("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespaceOnThatSide) {
  EXPECT_EQ(R("a\n\n  {%- if true %}b{% endif %}"), "ab");
  EXPECT_EQ(R("{% if true -%}\n\n  b{% endif %}"), "b");
  EXPECT_EQ(R("a  {{- 'x' -}}  \n b"), "axb");
  EXPECT_EQ(R("a \n{#- c -#}\n b"), "ab");
}

// The same loop with and without `-` in the tags: jinja2 prints different
// text, and templates depend on the difference.
TEST(JinjaWhitespace, SameTemplateWithAndWithoutStripMarkers) {
  ojson ctx = {{"xs", {"a", "b"}}};
  EXPECT_EQ(R("{% for x in xs %}\n{{ x }}\n{% endfor %}\n", ctx), "a\nb\n");
  EXPECT_EQ(R("{% for x in xs %}\n  {{ x }}\n{% endfor %}", ctx), "  a\n  b\n");
  EXPECT_EQ(R("{% for x in xs %}\n  {{- x }}\n{% endfor %}", ctx), "a\nb\n");
  EXPECT_EQ(R("{%- for x in xs -%}\n  {{ x }}\n{%- endfor %}", ctx), "ab");
  // A multi-line ChatML: the newline after each `}}` survives, so every turn
  // gains a blank line that the one-line template does not have.
  std::string multi =
      "{% for message in messages %}\n"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\n"
      "{% endfor %}\n"
      "{% if add_generation_prompt %}\n"
      "{{ '<|im_start|>assistant\\n' }}\n"
      "{% endif %}\n";
  ojson msgs = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"add_generation_prompt", true}};
  EXPECT_EQ(R(multi, msgs), "<|im_start|>user\nHi<|im_end|>\n\n<|im_start|>assistant\n\n");
}

TEST(JinjaWhitespace, LstripAppliesAfterATrimmedNewlineAndAtTheStart) {
  // After `%}\n` the next line starts fresh, so its indent before a tag goes.
  EXPECT_EQ(R("{% if true %}\n    {% if true %}x{% endif %}\n{% endif %}"), "x");
  // After `}}` without a newline the line has not started.
  EXPECT_EQ(R("{{ 'a' }}  {% if true %}b{% endif %}"), "a  b");
  // A whole line of only a tag disappears.
  EXPECT_EQ(R("line1\n    {% set x = 1 %}\nline2"), "line1\nline2");
}

// The shape Qwen3-VL's instruct template uses: literal data between tags,
// kept or dropped by `-%}` / `{%-` on either side.
TEST(JinjaWhitespace, InlineDataBetweenStrippedTags) {
  std::string tmpl =
      "{%- for content in contents %}\n"
      "    {%- if content.type == 'image' %}\n"
      "        {%- if add_vision_id %}Picture {{ loop.index }}: {% endif -%}\n"
      "        <|vision_start|><|image_pad|><|vision_end|>\n"
      "    {%- elif 'text' in content %}\n"
      "        {{- content.text }}\n"
      "    {%- endif %}\n"
      "{%- endfor %}\n";
  ojson ctx = {{"contents", {{{"type", "image"}}, {{"type", "text"}, {"text", "Hi"}}}}};
  EXPECT_EQ(R(tmpl, ctx), "<|vision_start|><|image_pad|><|vision_end|>Hi");
  ctx["add_vision_id"] = true;
  EXPECT_EQ(R(tmpl, ctx), "Picture 1: <|vision_start|><|image_pad|><|vision_end|>Hi");
}

TEST(JinjaWhitespace, TrailingNewlineAndLineEndings) {
  EXPECT_EQ(R("x\n"), "x");
  EXPECT_EQ(R("x\n\n"), "x\n");
  EXPECT_EQ(R("a\r\nb\rc\r\n"), "a\nb\nc");
  EXPECT_EQ(R(""), "");
}

TEST(JinjaWhitespace, RawBlocks) {
  EXPECT_EQ(R("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(R("{%- raw -%}  {{ y }}  {%- endraw %}"), "{{ y }}");
}

// ------------------------------------------------------------ statements ----

TEST(JinjaStatements, LoopVariables) {
  EXPECT_EQ(R("{% for i in [1, 2, 3] %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}"), "1, 2, 3");
  EXPECT_EQ(R("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
              "{{ loop.first }}{{ loop.length }};{% endfor %}"),
            "1032True3;2121False3;3210False3;");
  EXPECT_EQ(R("{% for x in [1, 2, 3] %}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }} "
              "{% endfor %}"),
            "-2 13 2- ");
  EXPECT_EQ(R("{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "ababa");
  // Nested loops: the inner `loop` shadows the outer one.
  EXPECT_EQ(R("{% for a in [1, 2] %}{% set outer = loop %}{% for b in [1, 2, 3] %}"
              "{{ outer.index }}{{ loop.index }} {% endfor %}{% endfor %}"),
            "11 12 13 21 22 23 ");
}

TEST(JinjaStatements, ForElseAndInlineFilter) {
  EXPECT_EQ(R("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in missing %}a{% else %}none{% endfor %}"), "none");
  // The inline `if` filters before loop.* is computed.
  EXPECT_EQ(R("{% for x in range(10) if x is odd %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}"),
            "1,3,5,7,9");
  EXPECT_EQ(R("{% for x in [1, 2] if x > 5 %}a{% else %}b{% endfor %}"), "b");
}

TEST(JinjaStatements, TupleUnpacking) {
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(R("{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}", {{"d", {{"x", 1}}}}), "x1");
  EXPECT_EQ(R("{% for (a, b), c in [[[1, 2], 3]] %}{{ a }}{{ b }}{{ c }}{% endfor %}"), "123");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_NE(R("{% for a, b in [[1, 2, 3]] %}{% endfor %}").find("too many values to unpack"), std::string::npos);
}

TEST(JinjaStatements, ScopingFollowsJinja) {
  // A loop body is its own scope; `if` is not.
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"), "21");
  EXPECT_EQ(R("{% if true %}{% set y = 3 %}{% endif %}{{ y }}"), "3");
  // Each iteration starts afresh.
  EXPECT_EQ(R("{% for i in [1, 2] %}{{ z is defined }}{% set z = i %}{% endfor %}"), "FalseFalse");
  // Namespaces carry state out of loops.
  EXPECT_EQ(R("{% set ns = namespace(x=1, found=false) %}{% for i in [1, 2, 3] %}{% set ns.x = ns.x + i %}"
              "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.x }} {{ ns.found }}"),
            "7 True");
  // A context variable can be shadowed.
  EXPECT_EQ(R("{% set messages = messages[1:] %}{{ messages | length }}", {{"messages", {1, 2, 3}}}), "2");
  EXPECT_NE(R("{% set x = 1 %}{% set x.a = 2 %}").find("non-namespace"), std::string::npos);
}

TEST(JinjaStatements, SetBlockMacroCallFilterWith) {
  EXPECT_EQ(R("{% set x %}hello {{ 1 + 1 }}{% endset %}{{ x | upper }}"), "HELLO 2");
  EXPECT_EQ(R("{% set x | trim %}  padded  {% endset %}[{{ x }}]"), "[padded]");
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
              "{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy') }}"),
            "Hi Bob! Hi Al? Hi Cy!");
  EXPECT_EQ(R("{% macro m(a) %}[{{ a }}|{{ varargs | length }}]{% endmacro %}{{ m() }}{{ m(1, 2, 3) }}"),
            "[|0][1|2]");
  EXPECT_EQ(R("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
              "{% call wrap('b') %}inner{% endcall %}"),
            "<b>inner</b>");
  EXPECT_EQ(R("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
              "{% call(item) each([1, 2]) %}({{ item }}){% endcall %}"),
            "(1)(2)");
  EXPECT_EQ(R("{% filter upper %}abc{{ 'd' }}{% endfilter %}"), "ABCD");
  EXPECT_EQ(R("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(R("{% print 1, 'x' %}"), "1x");
  // Macros see variables of the scope they were defined in.
  EXPECT_EQ(R("{% set who = 'W' %}{% macro m() %}{{ who }}{% endmacro %}{{ m() }}"), "W");
  // transformers' {% generation %} just renders its body.
  EXPECT_EQ(R("a{% generation %}b{{ 1 }}{% endgeneration %}c"), "ab1c");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(R("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
              "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0134");
  EXPECT_EQ(R("{% for a in [1, 2] %}{% for b in [1, 2] %}{% break %}{% endfor %}{{ a }}{% endfor %}"), "12");
  EXPECT_EQ(R("{% for a in [1, 2, 3] %}{% set x %}{{ a }}{% if a == 2 %}{% continue %}{% endif %}{% endset %}"
              "{{ x }}{% endfor %}"),
            "13");
}

// ----------------------------------------------------------- expressions ----

TEST(JinjaExpressions, ArithmeticLikePython) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 4 - 3 }}"), "7 9 3");
  EXPECT_EQ(R("{{ 10 // 3 }} {{ -10 // 3 }} {{ 10 % 3 }} {{ -10 % 3 }} {{ 10 % -3 }}"), "3 -4 1 2 -2");
  EXPECT_EQ(R("{{ 10 / 4 }} {{ 4 / 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"), "2.5 2.0 3.0 0.5");
  // jinja2's `**` is left-associative and binds after unary minus.
  EXPECT_EQ(R("{{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 2 ** -1 }}"), "64 4 0.5");
  EXPECT_EQ(R("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-7 }} {{ 123456789.0 * 10 }} {{ 1 / 3 }}"),
            "0.30000000000000004 1e+16 1.5e-07 1234567890.0 0.3333333333333333");
  EXPECT_EQ(R("{{ true + 1 }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ [1] + [2] }} {{ 'a' + 'b' }}"),
            "2 ababab [0, 0, 0] [1, 2] ab");
  EXPECT_EQ(R("{{ -(3) }} {{ +4 }} {{ 1_000 + 0x10 + 0o10 + 0b11 }}"), "-3 4 1027");
}

TEST(JinjaExpressions, ConcatAndPrinting) {
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ true ~ missing ~ 2.0 }}"), "a1NoneTrue2.0");
  EXPECT_EQ(R("{{ ['a', \"b'c\", 1.0, none, true, {'k': [1]}] }}"), "['a', \"b'c\", 1.0, None, True, {'k': [1]}]");
  EXPECT_EQ(R("{{ (1, 'a') }} {{ (1,) }} {{ none }} {{ false }}"), "(1, 'a') (1,) None False");
  EXPECT_EQ(R("{{ 'tab\\there' }}|{{ ['x\\ny'] }}"), "tab\there|['x\\ny']");
}

TEST(JinjaExpressions, StringLiterals) {
  EXPECT_EQ(R("{{ 'a\\nb' }}"), "a\nb");
  EXPECT_EQ(R("{{ \"it's\" }} {{ 'say \"hi\"' }} {{ 'it\\'s' }}"), "it's say \"hi\" it's");
  EXPECT_EQ(R("{{ '\\u00e9\\x41\\U0001F600' }}"), "\xC3\xA9" "A" "\xF0\x9F\x98\x80");
  EXPECT_EQ(R("{{ 'unknown \\d escape' }}"), "unknown \\d escape");
  EXPECT_EQ(R("{{ 'adjacent' ' strings' }}"), "adjacent strings");
  EXPECT_EQ(R("{{ '多语言' }}"), "多语言");
}

TEST(JinjaExpressions, ComparisonsAndLogic) {
  EXPECT_EQ(R("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == 'a' }} {{ [1, 2] == [1, 2] }} {{ none == false }}"),
            "True True True True False");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }}"), "True False True True");
  EXPECT_EQ(R("{{ 'b' in 'abc' }} {{ 'z' not in ['a'] }} {{ 'a' in {'a': 1} }} {{ 2 in [1, 2] }}"),
            "True True True True");
  // and/or return an operand, like Python.
  EXPECT_EQ(R("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 1 }}| {{ not 0 }}"), "x b | True");
  EXPECT_EQ(R("{{ 'x' if false }}|{{ 1 if 0 else 2 }}|{{ 'a' if true else 'b' }}"), "|2|a");
  EXPECT_NE(R("{{ 1 < 'a' }}").find("not supported between"), std::string::npos);
  EXPECT_NE(R("{{ 1 in 'abc' }}").find("requires string as left operand"), std::string::npos);
}

TEST(JinjaExpressions, SubscriptsSlicesAndAttributes) {
  ojson ctx = {{"m", {{"role", "user"}, {"content", "hi"}}}, {"xs", {10, 20, 30, 40}}};
  EXPECT_EQ(R("{{ m.role }} {{ m['content'] }} {{ xs[0] }} {{ xs[-1] }} {{ xs.1 }}", ctx), "user hi 10 40 20");
  EXPECT_EQ(R("{{ xs[1:] }} {{ xs[:2] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:] }} {{ xs[10:] }}", ctx),
            "[20, 30, 40] [10, 20] [40, 30, 20, 10] [10, 30] [30, 40] []");
  EXPECT_EQ(R("{{ 'hello'[::-1] }} {{ 'hello'[-1] }} {{ 'hello'[1:3] }} {{ 'héllo'[1] }} {{ 'héllo'[::-1] }}"),
            "olleh o el é olléh");
  // Missing items are undefined, not errors.
  EXPECT_EQ(R("[{{ m.nope }}][{{ xs[99] }}][{{ m['x'] is defined }}]", ctx), "[][][False]");
  // Attribute lookup prefers Python attributes: `d.items` is the method.
  EXPECT_EQ(R("{{ d.items is defined }} {{ d['items'] }}", {{"d", {{"items", 5}}}}), "True 5");
}

TEST(JinjaExpressions, UndefinedBehavesLikeJinja) {
  EXPECT_EQ(R("[{{ missing }}]"), "[]");
  EXPECT_EQ(R("{{ missing is defined }} {{ missing is undefined }} {{ missing | default('d') }}"), "False True d");
  EXPECT_EQ(R("{{ missing | length }} {{ missing == missing }} {{ 'a' in missing }} {% if not missing %}n{% endif %}"),
            "0 True False n");
  EXPECT_EQ(R("{{ none.x }}|{{ {}.x }}|{{ 'str'.nope }}"), "||");
  std::string e = R("{{ missing.attr }}");
  EXPECT_NE(e.find("'missing' is undefined"), std::string::npos) << e;
  e = R("{{ {}.x.y }}");
  EXPECT_NE(e.find("has no attribute 'x'"), std::string::npos) << e;
  EXPECT_NE(R("{{ missing + 1 }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(R("{{ missing() }}").find("is undefined"), std::string::npos);
}

// ----------------------------------------------------------------- tests ----

TEST(JinjaTests, TypeAndValueTests) {
  ojson ctx = {{"s", "x"}, {"i", 3}, {"f", 1.5}, {"b", true}, {"n", nullptr}, {"l", {1}}, {"d", {{"a", 1}}}};
  EXPECT_EQ(R("{{ s is string }}{{ i is string }}{{ i is number }}{{ f is number }}{{ b is number }}", ctx),
            "TrueFalseTrueTrueTrue");
  EXPECT_EQ(R("{{ i is integer }}{{ b is integer }}{{ f is float }}{{ b is boolean }}{{ i is boolean }}", ctx),
            "TrueFalseTrueTrueFalse");
  EXPECT_EQ(R("{{ d is mapping }}{{ l is mapping }}{{ n is none }}{{ s is none }}", ctx), "TrueFalseTrueFalse");
  EXPECT_EQ(R("{{ s is iterable }}{{ l is iterable }}{{ d is iterable }}{{ i is iterable }}{{ missing is iterable }}",
              ctx),
            "TrueTrueTrueFalseTrue");
  EXPECT_EQ(R("{{ l is sequence }}{{ s is sequence }}{{ i is sequence }}", ctx), "TrueTrueFalse");
  EXPECT_EQ(R("{{ b is true }}{{ b is false }}{{ 1 is true }}", ctx), "TrueFalseFalse");
  EXPECT_EQ(R("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}"),
            "TrueTrueTrueFalse");
  EXPECT_EQ(R("{{ 'a' is equalto 'a' }}{{ 2 is eq(2) }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 'a' is in 'abc' }}"),
            "TrueTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aBc' is lower }}"), "TrueTrueFalse");
  EXPECT_EQ(R("{{ i is not string }}{{ not i is string }}", ctx), "TrueTrue");
  EXPECT_EQ(R("{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}"), "TrueFalseTrue");
  EXPECT_EQ(R("{% macro m() %}{% endmacro %}{{ m is callable }}{{ 1 is callable }}"), "TrueFalse");
}

// --------------------------------------------------------------- filters ----

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(R("[{{ '  a b \\n' | trim }}][{{ 'xxaxx' | trim('x') }}]"), "[a b][a]");
  EXPECT_EQ(R("{{ 'Hello' | upper }} {{ 'Hello' | lower }} {{ 'hELLO wORLD' | capitalize }}"),
            "HELLO hello Hello world");
  EXPECT_EQ(R("{{ 'hello world-foo (bar) x' | title }} {{ 'straße' | upper }}"), "Hello World-Foo (Bar) X STRASSE");
  EXPECT_EQ(R("{{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', '-') }} {{ 'x' | replace('x', 'yz') }}"),
            "bba -a-b-c- yz");
  EXPECT_EQ(R("{{ 'abc' | length }} {{ 'héllo' | count }} {{ 'abc' | reverse }} {{ 'abc' | list }}"),
            "3 5 cba ['a', 'b', 'c']");
  EXPECT_EQ(R("{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}"),
            "a\n  b\n\n  c|  a\n  b|a\n> \n> b");
  EXPECT_EQ(R("{{ '<a href=\"x\">&\\'' | e }} {{ '<b>' | safe }}"), "&lt;a href=&#34;x&#34;&gt;&amp;&#39; <b>");
  EXPECT_EQ(R("{{ 'ab' | center(6) }}|{{ 'one two  three' | wordcount }}"), "  ab  |3");
  EXPECT_EQ(R("{{ '%s-%d-%.2f-%5s-%-3d|' | format('a', 3, 1.5, 'r', 7) }}"), "a-3-1.50-    r-7  |");
  EXPECT_EQ(R("{{ 'x=%(x)s' | format(x=1) }} {{ '%s and %s' % ('a', 'b') }} {{ '%s' % [1, 2] }} {{ '%d%%' % 5 }}"),
            "x=1 a and b [1, 2] 5%");
}

TEST(JinjaFilters, Conversions) {
  EXPECT_EQ(R("{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '0x1A' | int(0, 16) }}"),
            "42 4 0 7 3 26");
  EXPECT_EQ(R("{{ '1.5' | float }} {{ 2 | float }} {{ 'x' | float }} {{ ' 1e3 ' | float }}"), "1.5 2.0 0.0 1000.0");
  EXPECT_EQ(R("{{ 1 | string }}{{ none | string }}{{ [1] | string | length }}"), "1None3");
  // A filter after unary minus applies to the negated value, as in jinja2.
  EXPECT_EQ(R("{{ -3 | abs }} {{ -2.5 | abs }} {{ 0 - 3 | abs }}"), "3 2.5 -3");
  EXPECT_EQ(R("{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 2.1 | round(0, 'ceil') }} "
              "{{ 2.9 | round(method='floor') }} {{ 5 | round }} {{ 1234 | round(-2) }}"),
            "2.0 4.0 2.67 3.0 2.0 5 1200");
  EXPECT_EQ(R("{{ missing | default('a') }} {{ '' | default('b') }} {{ '' | default('c', true) }} {{ 0 | d('z', true) }}"),
            "a  c z");
}

TEST(JinjaFilters, Sequences) {
  ojson ctx = {{"users", {{{"name", "bo"}, {"age", 30}, {"admin", true}},
                          {{"name", "Al"}, {"age", 25}, {"admin", false}},
                          {{"name", "cy"}, {"age", 30}}}}};
  EXPECT_EQ(R("{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ [] | first is defined }}{{ 'ab' | last }}"),
            "32Falseb");
  EXPECT_EQ(R("{{ [1, 2, 3] | join('|') }} {{ users | join(', ', attribute='name') }}", ctx), "1|2|3 bo, Al, cy");
  EXPECT_EQ(R("{{ users | map(attribute='name') | join }} {{ ['a', 'b'] | map('upper') | list }}", ctx),
            "boAlcy ['A', 'B']");
  EXPECT_EQ(R("{{ users | map(attribute='admin', default='?') | list }}", ctx), "[True, False, '?']");
  EXPECT_EQ(R("{{ users | selectattr('admin') | map(attribute='name') | list }} "
              "{{ users | rejectattr('admin') | map(attribute='name') | list }} "
              "{{ users | selectattr('age', 'equalto', 30) | list | length }}",
              ctx),
            "['bo'] ['Al', 'cy'] 2");
  EXPECT_EQ(R("{{ range(10) | select('odd') | list }} {{ [0, 1, '', 'a'] | reject | list }} "
              "{{ [1, 5, 9] | select('gt', 4) | list }}"),
            "[1, 3, 5, 7, 9] [0, ''] [5, 9]");
  EXPECT_EQ(R("{{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} "
              "{{ [3, 1, 2] | sort(reverse=true) }}"),
            "['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1]");
  EXPECT_EQ(R("{{ users | sort(attribute='name') | map(attribute='name') | join(',') }} "
              "{{ users | sort(attribute='age,name') | map(attribute='name') | join(',') }}",
              ctx),
            "Al,bo,cy Al,bo,cy");
  EXPECT_EQ(R("{{ ['a', 'A', 'b', 'a'] | unique | list }} {{ [1, 2, 1] | unique | list }}"), "['a', 'b'] [1, 2]");
  // Set semantics: 1, 1.0 and True are one value; lists are unhashable.
  EXPECT_EQ(R("{{ [1, 1.0, true, 2, 2.5, 2.5] | unique | list }}"), "[1, 2, 2.5]");
  EXPECT_NE(R("{{ [[1], [1]] | unique | list }}").find("unhashable type: 'list'"), std::string::npos);
  EXPECT_EQ(R("{{ [1, 2] | reverse | list }} {{ {'a': 1} | list }} {{ [3, 5, 1] | max }} {{ [3, 5, 1] | min }}"),
            "[2, 1] ['a'] 5 1");
  EXPECT_EQ(R("{{ [1, 2, 3] | sum }} {{ users | sum(attribute='age') }} {{ [0.5, 1] | sum }}", ctx), "6 85 1.5");
  // (Pairs are tuples in jinja2; these loops do not depend on how they print.)
  EXPECT_EQ(R("{% for k, v in {'b': 1, 'a': 2} | dictsort %}{{ k }}{{ v }}{% endfor %} "
              "{% for k, v in {'b': 1, 'A': 2} | dictsort(by='value', reverse=true) %}{{ k }}{% endfor %} "
              "{% for k, v in {'b': 1, 'a': 2} | items %}{{ k }}{{ v }}{% endfor %}"),
            "a2b1 Ab b1a2");
  EXPECT_EQ(R("{{ [1, 2] | length }} {{ {'a': 1} | count }}"), "2 1");
}

TEST(JinjaFilters, ToJsonMatchesTransformers) {
  ojson ctx = {{"v", ojson::parse(R"({"s": "é\"\n\u0001", "n": [1, 2.5, true, null, 1e-7], "o": {}, "e": []})")}};
  EXPECT_EQ(R("{{ v | tojson }}", ctx),
            "{\"s\": \"\xC3\xA9\\\"\\n\\u0001\", \"n\": [1, 2.5, true, null, 1e-07], \"o\": {}, \"e\": []}");
  EXPECT_EQ(R("{{ v.n | tojson(indent=2) }}", ctx), "[\n  1,\n  2.5,\n  true,\n  null,\n  1e-07\n]");
  EXPECT_EQ(R("{{ {'a': {'b': 1}} | tojson(indent=1) }}"), "{\n \"a\": {\n  \"b\": 1\n }\n}");
  EXPECT_EQ(R("{{ 'é' | tojson(ensure_ascii=true) }} {{ '😀' | tojson(ensure_ascii=true) }}"),
            "\"\\u00e9\" \"\\ud83d\\ude00\"");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ [1, 2] | tojson(separators=(',', ':')) }}"),
            "{\"a\": 2, \"b\": 1} [1,2]");
  EXPECT_EQ(R("{{ '<b>' | tojson }} {{ 'x' | tojson }} {{ 3 | tojson }} {{ none | tojson }} {{ 1.0 | tojson }}"),
            "\"<b>\" \"x\" 3 null 1.0");
  EXPECT_NE(R("{{ missing | tojson }}").find("not JSON serializable"), std::string::npos);
}

// ------------------------------------------------------------- methods ----

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(R("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'hello'.startswith('lo', 3) }}"),
            "True True True");
  EXPECT_EQ(R("[{{ '  a  '.strip() }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ 'xax'.strip('x') }}]"),
            "[a][a  ][  a][a]");
  EXPECT_EQ(R("{{ ' a  b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }}"),
            "['a', 'b'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a b', 'c']");
  EXPECT_EQ(R("{{ 'x</think>y'.split('</think>')[-1] }} {{ 'a\\nb\\r\\nc'.splitlines() }}"), "y ['a', 'b', 'c']");
  EXPECT_EQ(R("{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}{{ \"they're bill's\".title() }}{{ 'aB'.capitalize() }}"),
            "ABabThey'Re Bill'SAb");
  EXPECT_EQ(R("{{ 'aaa'.replace('a', 'b') }} {{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }} {{ 'aXa'.count('a') }}"),
            "bbb 2 -1 2");
  EXPECT_EQ(R("{{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format(1, 'x') }} {{ '{name}: {0:>3}'.format(7, name='n') }}"),
            "a, b 1 and x n:   7");
  EXPECT_EQ(R("{{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}{{ ''.isdigit() }}"), "TrueTrueTrueFalse");
  EXPECT_EQ(R("{{ 'a-b'.partition('-')[2] }} {{ '7'.zfill(3) }} {{ 'ab'.removeprefix('a') }}"), "b 007 b");
}

TEST(JinjaMethods, DictAndListMethods) {
  ojson ctx = {{"d", {{"a", 1}, {"b", 2}}}};
  EXPECT_EQ(R("{{ d.keys() | list }} {{ d.values() | list }} {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}",
              ctx),
            "['a', 'b'] [1, 2] a1b2");
  EXPECT_EQ(R("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }}", ctx), "1 None 0");
  EXPECT_EQ(R("{{ [1, 2, 1].count(1) }} {{ ['x', 'y'].index('y') }}"), "2 1");
  // The immutable sandbox refuses mutating methods.
  std::string e = R("{% set l = [1] %}{{ l.append(2) }}");
  EXPECT_NE(e.find("unsafe"), std::string::npos) << e;
  EXPECT_EQ(R("{{ [].append is defined }} {{ {}.update is defined }}"), "False False");
}

TEST(JinjaGlobals, RangeNamespaceDictRaiseStrftime) {
  EXPECT_EQ(R("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ range(0) | list }}"),
            "[0, 1, 2] [1, 3, 5] [5, 3, 1] []");
  EXPECT_EQ(R("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}"), "121");
  EXPECT_EQ(R("{{ dict(a=1, b='x') }}"), "{'a': 1, 'b': 'x'}");
  std::string e = R("{{ raise_exception('custom message') }}");
  EXPECT_NE(e.find("custom message"), std::string::npos) << e;
  std::string year = R("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u) << year;
  EXPECT_GE(std::stoi(year), 2024);
  EXPECT_EQ(R("{{ range is defined }} {{ foo is defined }} {{ strftime_now is defined }}"), "True False True");
  // Llama 3.2's date line: `strftime_now("%d %b %Y")`.
  std::string date = R("{{ strftime_now('%d %b %Y') }}");
  EXPECT_EQ(date.size(), 11u) << date;
}

TEST(JinjaContext, TransformersDefaults) {
  // tools and documents are None, add_generation_prompt is False unless given.
  EXPECT_EQ(R("{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} {{ tools is defined }}"),
            "True True False True");
  EXPECT_EQ(R("{{ tools | length }}", {{"tools", {1, 2}}}), "2");
  auto t = ChatTemplate::parse("x");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->render(nlohmann::json::array()).ok());
  // Templates are cheap to copy and a copy renders the same.
  ChatTemplate copy = *t;
  EXPECT_EQ(*copy.render(nlohmann::json::object()), "x");
  EXPECT_EQ(copy.source(), "x");
}

}  // namespace
}  // namespace vlm::text
