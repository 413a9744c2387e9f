#!/usr/bin/env python3
"""Writes official_cases.json: random chat-encoding, completion-parsing and JSON cases whose
expected results come from DeepSeek's official encoding/encoding_dsv4.py (and Python's json
module). Nothing here computes an expected value itself.

    python3 make_official_cases.py /path/to/encoding_dsv4.py > official_cases.json

The reference module needs only the standard library. The output is deterministic for a given
seed and reference file.
"""
import copy
import importlib.util
import json
import random
import sys

spec = importlib.util.spec_from_file_location("encoding_dsv4", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
rng = random.Random(20260601)

TEXTS = ["hi", "", "Hello {name}", "日本語 😀", "a\nb", 'x"y\\z', "tab\there", "  ", "Paris.",
         '{"k": 1}', "\u2028", "<tool_result>"]
IDS = ["c1", "c2", "c3", "", "zz"]
VALUES = ["str", "", 1, -0.0, 1.5e-7, 1e16, 0.1, True, False, None, [1, "x", {}],
          {"z": 1, "y": [2.5]}, "日本", 'q"q', "line\nbreak", 10**20]


def text():
    return rng.choice(TEXTS)


def arguments():
    r = rng.random()
    if r < 0.55:
        d = {k: rng.choice(VALUES) for k in rng.sample(["a", "b", "city", "n", "é", "obj"],
                                                        rng.randint(0, 3))}
        return json.dumps(d, ensure_ascii=rng.random() < 0.5,
                          separators=rng.choice([(",", ":"), (", ", ": ")]))
    return rng.choice(['{"a": 1, "b": 2, "a": "3"}', "not json {", "[1, 2]",
                       {"x": 1, "y": [1.0]}, '{"t": NaN, "u": 1E400}', '{"s": "v"}', ""])


def tools():
    return [{"type": "function",
             "function": {"name": rng.choice(["get", "search"]), "description": text(),
                          "parameters": {"type": "object", "properties": {
                              "x": {"type": "number",
                                    "default": rng.choice([1, 0.5, 1e-5, -1, True, None])}}}}}
            for _ in range(rng.randint(1, 2))]


def message():
    role = rng.choices(["system", "user", "assistant", "tool", "developer", "latest_reminder",
                        "direct_search_results"], [2, 6, 6, 4, 2, 2, 0.4])[0]
    m = {"role": role}
    if role == "assistant":
        if rng.random() < 0.8:
            m["content"] = rng.choice([text(), None])
        if rng.random() < 0.6:
            m["reasoning_content"] = rng.choice([text(), None])
        if rng.random() < 0.4:
            m["tool_calls"] = []
            for _ in range(rng.randint(0, 3)):
                tc = {"type": "function",
                      "function": {"name": rng.choice(["get", "search"]), "arguments": arguments()}}
                if rng.random() < 0.8:
                    tc["id"] = rng.choice(IDS)
                m["tool_calls"].append(tc)
        if rng.random() < 0.15:
            m["wo_eos"] = True
        if rng.random() < 0.1:
            m["task"] = rng.choice(["title", "action", "query"])
    elif role == "tool":
        if rng.random() < 0.8:
            m["tool_call_id"] = rng.choice(IDS)
        if rng.random() < 0.7:
            m["content"] = text()
        elif rng.random() < 0.8:
            m["content"] = [rng.choice([{"type": "text", "text": text()},
                                        {"type": "image_url", "image_url": {"url": "u"}},
                                        {"type": "text"}, {"text": "no type"}])
                            for _ in range(rng.randint(0, 3))]
    elif role == "user":
        m["content"] = text()
        if rng.random() < 0.2:
            m["task"] = rng.choice(["action", "query", "authority", "domain", "title", "read_url",
                                    "bogus"])
    elif role in ("system", "developer"):
        if rng.random() < 0.9:
            m["content"] = text()
        if rng.random() < 0.15:
            m["tools"] = tools()
        if rng.random() < 0.2:
            m["response_format"] = rng.choice([{"type": "json_object", "schema": {"a": 1.0}}, {},
                                               "text"])
    else:
        m["content"] = text()
    return m


def encode_cases(n):
    out = []
    for _ in range(n):
        msgs = [message() for _ in range(rng.randint(0, 7))]
        ctx = None
        if msgs and rng.random() < 0.3:
            k = rng.randint(0, len(msgs))
            ctx, msgs = msgs[:k], msgs[k:]
        opts = {"thinking_mode": rng.choice(["chat", "thinking", "thinking"]),
                "drop_thinking": rng.random() < 0.75,
                "add_default_bos_token": rng.random() < 0.8,
                "reasoning_effort": rng.choice([None, None, "high", "max"])}
        case = {"messages": msgs, "context": ctx, "options": opts}
        try:
            case["expected"] = ref.encode_messages(copy.deepcopy(msgs), context=copy.deepcopy(ctx),
                                                   **opts)
        except Exception as e:  # the reference rejects the input
            case["error"] = type(e).__name__ + ": " + str(e)[:120]
        out.append(case)
    return out


EOS = ref.eos_token
PIECES = ["</think>", "<think>", EOS, "\n\n<｜DSML｜tool_calls>\n", '<｜DSML｜invoke name="f">\n',
          '<｜DSML｜parameter name="a" string="true">', "</｜DSML｜parameter>\n",
          "</｜DSML｜invoke>\n", "</｜DSML｜tool_calls>", ">\n", "\n", '"', "<", "x", "｜DSML｜",
          " ", "\u3000", 'name="', '" string="false">', "/｜DSML｜parameter"]


def completion(thinking):
    s = rng.choice(["reason", "", "r\nr", "日本"]) + "</think>" if thinking else ""
    s += rng.choice(["answer", "", "a b", "°C"])
    if rng.random() < 0.6:
        invokes = []
        for _ in range(rng.randint(0, 3)):
            params = []
            for k in rng.sample(["a", "b", "日", 'q"x'], rng.randint(0, 3)):
                flag = rng.choice(["true", "false"])
                v = rng.choice(["v", "", "1", '{"z": [1, 2]}', "x<y", "multi\nline", '"q"', "a\\b"])
                params.append(f'<｜DSML｜parameter name="{k}" string="{flag}">{v}'
                              "</｜DSML｜parameter>")
            invokes.append(f'<｜DSML｜invoke name="{rng.choice(["f", "get_weather"])}">\n' +
                           "\n".join(params) + "\n</｜DSML｜invoke>")
        s += "\n\n<｜DSML｜tool_calls>\n" + "\n".join(invokes) + "\n</｜DSML｜tool_calls>"
    s += EOS
    if rng.random() < 0.5:  # damage it
        for _ in range(rng.randint(1, 3)):
            r, i = rng.random(), rng.randint(0, len(s))
            if r < 0.4:
                s = s[:i] + rng.choice(PIECES) + s[i:]
            elif r < 0.7:
                s = s[:i] + s[min(len(s), i + rng.randint(1, 20)):]
            else:
                s = s[:i]
    return s


def parse_cases(n):
    out = []
    for _ in range(n):
        thinking = rng.random() < 0.6
        text_ = completion(thinking)
        case = {"text": text_, "thinking_mode": "thinking" if thinking else "chat"}
        try:
            r = ref.parse_message_from_completion_text(text_, case["thinking_mode"])
            case["expected"] = {"reasoning_content": r["reasoning_content"],
                                "content": r["content"],
                                "tool_calls": [[t["function"]["name"], t["function"]["arguments"]]
                                               for t in r["tool_calls"]]}
        except Exception as e:
            case["error"] = type(e).__name__ + ": " + str(e)[:120]
        out.append(case)
    return out


ATOMS = ["0", "-0", "12345678901234567890123", "1.0", "-0.0", "1e5", "1E-5", "1.5e300", "1e400",
         "2e-324", "5e-324", "0.1", "100e-2", "1e16", "1e15", "123.456e-7", "NaN", "-Infinity",
         "true", "null", '""', '"\\u00e9\\n\\t\\"\\\\\\/"', '"\\u001f\\u0000\\u007f"',
         '"\\ud83d\\ude00"', '"日本語"', "0.30000000000000004", "9007199254740993.0"]


def json_text(d=0):
    r = rng.random()
    if d > 3 or r < 0.4:
        return rng.choice(ATOMS)
    if r < 0.7:
        return "[" + ",".join(json_text(d + 1) for _ in range(rng.randint(0, 3))) + "]"
    keys = ['"a"', '"b"', '"\\u0061"', '"é"', '""']
    return "{" + ", ".join(rng.choice(keys) + ":" + json_text(d + 1)
                           for _ in range(rng.randint(0, 3))) + "}"


def json_cases(n):
    out = []
    for _ in range(n):
        t = json_text()
        if rng.random() < 0.25:
            i = rng.randint(0, len(t))
            t = t[:i] + rng.choice(list('[]{},:" 0-.e')) + t[i:]
        try:
            out.append({"input": t, "expected": json.dumps(json.loads(t), ensure_ascii=False)})
        except ValueError:
            out.append({"input": t, "expected": None})
    return out


doc = {
    "_comment": "Generated by make_official_cases.py from DeepSeek's official encoding_dsv4.py "
                "(encode_messages, parse_message_from_completion_text) and Python " +
                sys.version.split()[0] + "'s json module; the expected values are theirs.",
    "encode": encode_cases(160),
    "parse": parse_cases(160),
    "json": json_cases(200),
}
json.dump(doc, sys.stdout, ensure_ascii=True, indent=0)
sys.stdout.write("\n")
