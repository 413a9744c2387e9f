// encode_messages(): the rules of DeepSeek's encoding_dsv4.py (encode_messages, render_message,
// merge_tool_messages, sort_tool_results_by_call_order, _drop_thinking_messages), written anew
// for typed messages. docs/chat-encoding.md walks through them; the comments here only say
// which reference step each piece implements.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat/json_value.hpp"
#include "dsv4/chat.hpp"

namespace dsv4 {

const char * thinking_mode_name(ThinkingMode mode) noexcept {
    return mode == ThinkingMode::thinking ? "thinking" : "chat";
}

const char * reasoning_effort_name(ReasoningEffort effort) noexcept {
    switch (effort) {
        case ReasoningEffort::none: return "none";
        case ReasoningEffort::high: return "high";
        case ReasoningEffort::max: return "max";
    }
    return "unknown";
}

namespace {

using chat::JsonValue;
namespace tok = chat_tokens;

// Prompt prefix for reasoning_effort = max (text of the reference's REASONING_EFFORT_MAX).
constexpr std::string_view kReasoningEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to "
    "resolve the root cause, rigorously stress-testing your logic against all potential paths, "
    "edge cases, and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, "
    "considered alternative, and rejected hypothesis to ensure absolutely no assumption is left "
    "unchecked.\n\n";

// The reference's TOOLS_TEMPLATE with its tokens filled in, split around {tool_schemas}.
constexpr std::string_view kToolsHead =
    "## Tools\n\n"
    "You have access to a set of tools to help answer the user's question. You can invoke tools "
    "by writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n"
    "<｜DSML｜tool_calls>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME\">\n"
    "<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE"
    "</｜DSML｜parameter>\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME2\">\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜tool_calls>\n\n"
    "String parameters should be specified as is and set `string=\"true\"`. For all other types "
    "(numbers, booleans, arrays, objects), pass the value in JSON format and set "
    "`string=\"false\"`.\n\n"
    "If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning "
    "inside <think>...</think> BEFORE any tool calls or final response.\n\n"
    "Otherwise, output directly after </think> with tool calls or final response.\n\n"
    "### Available Tool Schemas\n\n";
constexpr std::string_view kToolsTail =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke "
    "tool calls.\n";

constexpr std::string_view kResponseFormatHead =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

struct TaskToken {
    std::string_view name;
    std::string_view token;
};
constexpr TaskToken kTasks[] = {
    {"action", "<｜action｜>"}, {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
    {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"},
};

Status bad(std::string msg) {
    return Status(Errc::invalid_argument, std::move(msg));
}

// What encode needs from one input message beyond the message itself: its JSON fields, parsed.
struct Prepared {
    std::string              origin;           // "messages[3]" / "context[0]", for error messages
    std::vector<JsonValue>   tools;            // the function schemas
    std::optional<JsonValue> response_format;  // only when truthy
};

// A block of a (merged) user message: its own text, or a tool message's result.
struct Block {
    bool                tool_result = false;
    const ChatMessage * from        = nullptr;
};

// One message after merge_tool_messages (user and tool messages become "user" with blocks).
struct Msg {
    const ChatMessage * src  = nullptr;
    const Prepared *    prep = nullptr;
    std::string_view    role;
    std::vector<Block>  blocks;                       // role "user" only
    const std::string * task              = nullptr;  // the task key; null when absent
    bool                reasoning_dropped = false;

    bool is_user() const { return role == "user"; }
    // Merged user messages carry only content/task/wo_eos, so no tools, tool calls or format.
    bool has_tools() const { return !is_user() && !src->tools.empty(); }
};

Status check_utf8(std::string_view s, const std::string & origin, std::string_view field) {
    const size_t bad_at = chat::find_invalid_utf8(s);
    if (bad_at != std::string_view::npos) {
        return bad(origin + "." + std::string(field) + ": not valid UTF-8 (byte " +
                   std::to_string(bad_at) + ")");
    }
    return Status();
}

#define DSV4_CHAT_TRY(expr)          \
    do {                             \
        ::dsv4::Status st_ = (expr); \
        if (!st_.ok()) {             \
            return st_;              \
        }                            \
    } while (0)

// Checks one input message and parses its JSON fields.
Status prepare(const ChatMessage & m, std::string origin, Prepared & p) {
    p.origin              = std::move(origin);
    const std::string & o = p.origin;
    DSV4_CHAT_TRY(check_utf8(m.role, o, "role"));
    DSV4_CHAT_TRY(check_utf8(m.content, o, "content"));
    DSV4_CHAT_TRY(check_utf8(m.reasoning_content, o, "reasoning_content"));
    DSV4_CHAT_TRY(check_utf8(m.tool_call_id, o, "tool_call_id"));
    if (m.task) {
        DSV4_CHAT_TRY(check_utf8(*m.task, o, "task"));
    }
    if (m.content_parts) {
        if (m.role != "tool") {
            return bad(o + ".content: a list content is only supported for tool messages (role \"" +
                       m.role + "\")");
        }
        for (size_t i = 0; i < m.content_parts->size(); ++i) {
            const ContentPart & part = (*m.content_parts)[i];
            const std::string   f    = "content[" + std::to_string(i) + "]";
            DSV4_CHAT_TRY(check_utf8(part.type, o, f + ".type"));
            DSV4_CHAT_TRY(check_utf8(part.text, o, f + ".text"));
        }
    }
    for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        const ToolCall &  tc = m.tool_calls[i];
        const std::string f  = "tool_calls[" + std::to_string(i) + "]";
        DSV4_CHAT_TRY(check_utf8(tc.id, o, f + ".id"));
        DSV4_CHAT_TRY(check_utf8(tc.name, o, f + ".function.name"));
        DSV4_CHAT_TRY(check_utf8(tc.arguments, o, f + ".function.arguments"));
        if (tc.arguments_is_value) {
            auto r = chat::parse_json(tc.arguments, o + "." + f + ".function.arguments");
            if (!r.ok()) {
                return r.status();
            }
        }
    }
    for (size_t i = 0; i < m.tools.size(); ++i) {
        const std::string what = o + ".tools[" + std::to_string(i) + "]";
        auto              r    = chat::parse_json(m.tools[i], what);
        if (!r.ok()) {
            return r.status();
        }
        JsonValue & tool = r.value();
        if (!tool.is_object()) {
            return bad(what + ": expected an object (a tool), got " + json_type_name(tool.type));
        }
        // OpenAI form {"type": "function", "function": {...}}: the function is what is rendered.
        if (const JsonValue * fn = tool.find("function")) {
            p.tools.push_back(*fn);
        } else {
            p.tools.push_back(std::move(tool));
        }
    }
    if (!m.response_format.empty()) {
        auto r = chat::parse_json(m.response_format, o + ".response_format");
        if (!r.ok()) {
            return r.status();
        }
        if (r->truthy()) {
            p.response_format = std::move(r.value());
        }
    }
    return Status();
}

// merge_tool_messages: a tool message becomes a tool_result block of the previous merged user
// message when there is one (else a new user message); a user message becomes a text block
// appended to the previous merged user message if that one has no task (else a new message that
// keeps its task).
std::vector<Msg> merge_tool_messages(const std::vector<ChatMessage> & in,
                                     const std::vector<Prepared> &    prep) {
    std::vector<Msg> out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const ChatMessage & m = in[i];
        if (m.role == "tool" || m.role == "user") {
            const bool is_tool = m.role == "tool";
            const bool append =
                !out.empty() && out.back().is_user() && (is_tool || out.back().task == nullptr);
            Block b{is_tool, &m};
            if (append) {
                out.back().blocks.push_back(b);
                continue;
            }
            Msg u;
            u.src  = &m;
            u.prep = &prep[i];
            u.role = "user";
            u.blocks.push_back(b);
            u.task = (!is_tool && m.task) ? &*m.task : nullptr;
            out.push_back(std::move(u));
            continue;
        }
        Msg x;
        x.src  = &m;
        x.prep = &prep[i];
        x.role = m.role;
        x.task = m.task ? &*m.task : nullptr;
        out.push_back(std::move(x));
    }
    return out;
}

// sort_tool_results_by_call_order: in a user message with more than one tool result, the results
// are reordered (stably) by the position of their call id among the tool calls of the latest
// assistant message that made calls; unknown ids count as position 0. Other blocks stay put.
void sort_tool_results(std::vector<Msg> & msgs) {
    std::unordered_map<std::string_view, size_t> order;
    for (Msg & m : msgs) {
        if (m.role == "assistant" && !m.src->tool_calls.empty()) {
            order.clear();
            for (size_t k = 0; k < m.src->tool_calls.size(); ++k) {
                const std::string & id = m.src->tool_calls[k].id;
                if (!id.empty()) {
                    order[id] = k;
                }
            }
            continue;
        }
        if (!m.is_user() || order.empty()) {
            continue;
        }
        std::vector<Block> results;
        for (const Block & b : m.blocks) {
            if (b.tool_result) {
                results.push_back(b);
            }
        }
        if (results.size() < 2) {
            continue;
        }
        auto rank = [&](const Block & b) {
            auto it = order.find(b.from->tool_call_id);
            return it == order.end() ? size_t{0} : it->second;
        };
        std::stable_sort(results.begin(), results.end(),
                         [&](const Block & a, const Block & b) { return rank(a) < rank(b); });
        size_t next = 0;
        for (Block & b : m.blocks) {
            if (b.tool_result) {
                b = results[next++];
            }
        }
    }
}

// find_last_user_index: last message with role user or developer, or -1.
long last_user_index(const std::vector<Msg> & msgs) {
    for (size_t i = msgs.size(); i-- > 0;) {
        if (msgs[i].role == "user" || msgs[i].role == "developer") {
            return static_cast<long>(i);
        }
    }
    return -1;
}

// _drop_thinking_messages: before the last user/developer message, keep user, system, tool,
// latest_reminder and direct_search_results messages, keep assistant messages without their
// reasoning, and drop everything else (developer messages, unknown roles).
std::vector<Msg> drop_thinking_messages(const std::vector<Msg> & msgs) {
    const long       last = last_user_index(msgs);
    std::vector<Msg> out;
    for (size_t i = 0; i < msgs.size(); ++i) {
        const Msg &            m = msgs[i];
        const std::string_view r = m.role;
        const bool keep = r == "user" || r == "system" || r == "tool" || r == "latest_reminder" ||
                          r == "direct_search_results" || static_cast<long>(i) >= last;
        if (keep) {
            out.push_back(m);
        } else if (r == "assistant") {
            out.push_back(m);
            out.back().reasoning_dropped = true;
        }
    }
    return out;
}

struct RenderOptions {
    bool            thinking = false;
    bool            drop     = true;
    ReasoningEffort effort   = ReasoningEffort::none;
};

void render_tools(const std::vector<JsonValue> & tools, std::string & out) {
    out += kToolsHead;
    for (size_t i = 0; i < tools.size(); ++i) {
        if (i != 0) {
            out += '\n';
        }
        chat::dump_json(tools[i], out);
    }
    out += kToolsTail;
}

// The tools / response-format suffixes of system and developer messages.
void render_system_suffixes(const Prepared & p, std::string & out) {
    if (!p.tools.empty()) {
        out += "\n\n";
        render_tools(p.tools, out);
    }
    if (p.response_format) {
        out += "\n\n";
        out += kResponseFormatHead;
        chat::dump_json(*p.response_format, out);
    }
}

void render_param(std::string_view name, bool is_string, std::string_view value,
                  std::string & out) {
    out += "<｜DSML｜parameter name=\"";
    out += name;
    out += "\" string=\"";
    out += is_string ? "true" : "false";
    out += "\">";
    out += value;
    out += "</｜DSML｜parameter>";
}

// encode_arguments_to_dsml: one parameter per key of the arguments object; text that is not
// JSON becomes one string parameter "arguments"; a non-string `arguments` value becomes one
// non-string parameter "arguments".
Status render_arguments(const ToolCall & tc, const std::string & what, std::string & out) {
    if (tc.arguments_is_value) {
        auto v = chat::parse_json(tc.arguments, what);  // checked in prepare()
        if (!v.ok()) {
            return v.status();
        }
        render_param("arguments", false, chat::dump_json(*v), out);
        return Status();
    }
    auto parsed = chat::parse_json(tc.arguments, what);
    if (!parsed.ok()) {
        render_param("arguments", true, tc.arguments, out);
        return Status();
    }
    const JsonValue & args = *parsed;
    if (!args.is_object()) {
        return bad(what + ": the arguments are JSON but not an object (got " +
                   json_type_name(args.type) + ")");
    }
    for (size_t i = 0; i < args.items.size(); ++i) {
        if (i != 0) {
            out += '\n';
        }
        const JsonValue & v = args.items[i];
        if (v.is_string()) {
            render_param(args.keys[i], true, v.text, out);
        } else {
            render_param(args.keys[i], false, chat::dump_json(v), out);
        }
    }
    return Status();
}

Status render_tool_calls(const Msg & m, std::string & out) {
    const std::vector<ToolCall> & calls = m.src->tool_calls;
    out += "\n\n<｜DSML｜tool_calls>\n";
    for (size_t k = 0; k < calls.size(); ++k) {
        if (k != 0) {
            out += '\n';
        }
        out += "<｜DSML｜invoke name=\"";
        out += calls[k].name;
        out += "\">\n";
        DSV4_CHAT_TRY(render_arguments(
            calls[k], m.prep->origin + ".tool_calls[" + std::to_string(k) + "].function.arguments",
            out));
        out += "\n</｜DSML｜invoke>";
    }
    out += "\n</｜DSML｜tool_calls>";
    return Status();
}

void render_user_blocks(const Msg & m, std::string & out) {
    for (size_t i = 0; i < m.blocks.size(); ++i) {
        if (i != 0) {
            out += "\n\n";
        }
        const Block & b = m.blocks[i];
        if (!b.tool_result) {
            out += b.from->content;
            continue;
        }
        out += "<tool_result>";
        if (b.from->content_parts) {
            const std::vector<ContentPart> & parts = *b.from->content_parts;
            for (size_t k = 0; k < parts.size(); ++k) {
                if (k != 0) {
                    out += "\n\n";
                }
                if (parts[k].type == "text") {
                    out += parts[k].text;
                } else {
                    out += "[Unsupported ";
                    out += parts[k].type;
                    out += ']';
                }
            }
        } else {
            out += b.from->content;
        }
        out += "</tool_result>";
    }
}

// render_message for msgs[index]; `last` is last_user_index(msgs).
Status render(size_t index, const std::vector<Msg> & msgs, long last, const RenderOptions & opt,
              std::string & out) {
    const Msg &            m      = msgs[index];
    const std::string &    origin = m.prep->origin;
    const std::string_view role   = m.role;

    if (index == 0 && opt.thinking && opt.effort == ReasoningEffort::max) {
        out += kReasoningEffortMax;
    }

    if (role == "system") {
        out += m.src->content;
        render_system_suffixes(*m.prep, out);
    } else if (role == "developer") {
        if (m.src->content.empty()) {
            return bad(origin + ": a developer message needs non-empty content");
        }
        out += tok::user;
        out += m.src->content;
        render_system_suffixes(*m.prep, out);
    } else if (role == "user") {
        out += tok::user;
        render_user_blocks(m, out);
    } else if (role == "latest_reminder") {
        out += tok::latest_reminder;
        out += m.src->content;
    } else if (role == "assistant") {
        const bool prev_has_task = index > 0 && msgs[index - 1].task != nullptr;
        if (opt.thinking && !prev_has_task && (!opt.drop || static_cast<long>(index) > last)) {
            if (!m.reasoning_dropped) {
                out += m.src->reasoning_content;
            }
            out += tok::think_end;
        }
        out += m.src->content;
        if (!m.src->tool_calls.empty()) {
            DSV4_CHAT_TRY(render_tool_calls(m, out));
        }
        if (!m.src->wo_eos) {
            out += tok::eos;
        }
    } else {
        return bad(origin + ": unknown role \"" + std::string(role) +
                   "\" (expected system, developer, user, assistant, tool or latest_reminder)");
    }

    // Transition: nothing when the next message is not an assistant / latest_reminder turn.
    if (index + 1 < msgs.size() && msgs[index + 1].role != "assistant" &&
        msgs[index + 1].role != "latest_reminder") {
        return Status();
    }
    if (m.task != nullptr) {
        const TaskToken * task = nullptr;
        for (const TaskToken & t : kTasks) {
            if (t.name == *m.task) {
                task = &t;
            }
        }
        if (task == nullptr) {
            return bad(origin + ".task: invalid task \"" + *m.task +
                       "\" (expected action, query, authority, domain, title or read_url)");
        }
        if (task->name != "action") {
            out += task->token;
        } else {
            out += tok::assistant;
            out += opt.thinking ? tok::think_start : tok::think_end;
            out += task->token;
        }
    } else if (role == "user" || role == "developer") {
        out += tok::assistant;
        const bool think = opt.thinking && (!opt.drop || static_cast<long>(index) >= last);
        out += think ? tok::think_start : tok::think_end;
    }
    return Status();
}

}  // namespace

Result<std::string> encode_messages(const std::vector<ChatMessage> & messages,
                                    const EncodeOptions &            options) {
    const std::vector<ChatMessage> & context = options.context;
    std::vector<Prepared>            ctx_prep(context.size());
    std::vector<Prepared>            msg_prep(messages.size());
    for (size_t i = 0; i < context.size(); ++i) {
        DSV4_CHAT_TRY(prepare(context[i], "context[" + std::to_string(i) + "]", ctx_prep[i]));
    }
    for (size_t i = 0; i < messages.size(); ++i) {
        DSV4_CHAT_TRY(prepare(messages[i], "messages[" + std::to_string(i) + "]", msg_prep[i]));
    }

    // Merge each list on its own, then sort tool results over context + messages in one pass
    // (the call order seen in the context carries over into the messages).
    std::vector<Msg> ctx  = merge_tool_messages(context, ctx_prep);
    std::vector<Msg> msgs = merge_tool_messages(messages, msg_prep);
    std::vector<Msg> full;
    full.reserve(ctx.size() + msgs.size());
    full.insert(full.end(), ctx.begin(), ctx.end());
    full.insert(full.end(), msgs.begin(), msgs.end());
    sort_tool_results(full);

    std::string prompt;
    if (options.add_default_bos_token && ctx.empty()) {
        prompt += tok::bos;
    }

    RenderOptions opt;
    opt.thinking = options.thinking_mode == ThinkingMode::thinking;
    opt.effort   = options.reasoning_effort;
    opt.drop     = options.drop_thinking &&
               std::none_of(full.begin(), full.end(), [](const Msg & m) { return m.has_tools(); });

    // Which messages of `full` are rendered: the last (len(full) - len(context)) of them, where
    // with dropping both lists are taken after _drop_thinking_messages (each on its own, exactly
    // as the reference does).
    long n_render    = static_cast<long>(msgs.size());
    long context_len = static_cast<long>(ctx.size());
    if (opt.thinking && opt.drop) {
        full = drop_thinking_messages(full);
        n_render =
            static_cast<long>(full.size()) - static_cast<long>(drop_thinking_messages(ctx).size());
        context_len = static_cast<long>(full.size()) - n_render;
    }
    const long last = last_user_index(full);
    for (long i = 0; i < n_render; ++i) {
        DSV4_CHAT_TRY(render(static_cast<size_t>(i + context_len), full, last, opt, prompt));
    }
    return prompt;
}

}  // namespace dsv4
