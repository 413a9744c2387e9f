// messages_from_json(): OpenAI-style message JSON -> ChatMessage. Field types are checked here;
// where DeepSeek's reference would render a Python `None` or repr (a null user or tool content,
// a missing latest_reminder content, a non-string name, …) the input is rejected instead, and
// where it would fail anyway (a non-list `tools`, a tool call without `function.name`, …) the
// error is reported here with the message index and field.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/json_value.hpp"
#include "dsv4/chat.hpp"

namespace dsv4 {

namespace {

using chat::JsonValue;

Status bad(std::string msg) {
    return Status(Errc::invalid_argument, std::move(msg));
}

Status wrong_type(const std::string & where, std::string_view expected, const JsonValue & got) {
    return bad(where + ": expected " + std::string(expected) + ", got " +
               chat::json_type_name(got.type));
}

#define DSV4_CHAT_TRY(expr)          \
    do {                             \
        ::dsv4::Status st_ = (expr); \
        if (!st_.ok()) {             \
            return st_;              \
        }                            \
    } while (0)

// An optional string member: absent or null leave `out` as it is.
Status opt_string(const JsonValue & obj, std::string_view key, const std::string & where,
                  std::string & out) {
    const JsonValue * v = obj.find(key);
    if (v == nullptr || v->is_null()) {
        return Status();
    }
    if (!v->is_string()) {
        return wrong_type(where + "." + std::string(key), "a string or null", *v);
    }
    out = v->text;
    return Status();
}

Status parse_content(const JsonValue & msg, const std::string & role, const std::string & where,
                     ChatMessage & out) {
    const JsonValue * v = msg.find("content");
    const std::string w = where + ".content";
    if (v == nullptr) {
        if (role == "latest_reminder") {
            return bad(w + ": a latest_reminder message needs a content string");
        }
        return Status();
    }
    if (v->is_string()) {
        out.content = v->text;
        return Status();
    }
    if (v->is_null()) {
        // The reference renders a null user/tool/latest_reminder content as "None" (or fails).
        if (role == "user" || role == "tool" || role == "latest_reminder") {
            return bad(w + ": null is not supported for a " + role + " message");
        }
        return Status();
    }
    if (v->is_array() && role == "tool") {
        std::vector<ContentPart> parts;
        for (size_t i = 0; i < v->items.size(); ++i) {
            const JsonValue & p  = v->items[i];
            const std::string pw = w + "[" + std::to_string(i) + "]";
            if (!p.is_object()) {
                return wrong_type(pw, "an object (a content part)", p);
            }
            ContentPart       part;
            const JsonValue * type = p.find("type");
            if (type == nullptr || type->is_null()) {
                part.type = "None";  // the reference prints "[Unsupported None]"
            } else if (type->is_string()) {
                part.type = type->text;
            } else {
                return wrong_type(pw + ".type", "a string", *type);
            }
            if (part.type == "text") {
                const JsonValue * text = p.find("text");
                if (text != nullptr) {
                    if (!text->is_string()) {
                        return wrong_type(pw + ".text", "a string", *text);
                    }
                    part.text = text->text;
                }
            }
            parts.push_back(std::move(part));
        }
        out.content_parts = std::move(parts);
        return Status();
    }
    return wrong_type(w, role == "tool" ? "a string or a list of content parts" : "a string", *v);
}

Status parse_tool_calls(const JsonValue & msg, const std::string & where, ChatMessage & out) {
    const JsonValue * v = msg.find("tool_calls");
    if (v == nullptr || !v->truthy()) {
        return Status();
    }
    const std::string w = where + ".tool_calls";
    if (!v->is_array()) {
        return wrong_type(w, "a list of tool calls", *v);
    }
    for (size_t i = 0; i < v->items.size(); ++i) {
        const JsonValue & tc = v->items[i];
        const std::string tw = w + "[" + std::to_string(i) + "]";
        if (!tc.is_object()) {
            return wrong_type(tw, "an object (a tool call)", tc);
        }
        const JsonValue * fn = tc.find("function");
        if (fn == nullptr) {
            return bad(tw + ": missing \"function\"");
        }
        if (!fn->is_object()) {
            return wrong_type(tw + ".function", "an object", *fn);
        }
        ToolCall call;
        // id: `id`, or when that is empty, `function.id`.
        DSV4_CHAT_TRY(opt_string(tc, "id", tw, call.id));
        if (call.id.empty()) {
            DSV4_CHAT_TRY(opt_string(*fn, "id", tw + ".function", call.id));
        }
        const JsonValue * name = fn->find("name");
        if (name == nullptr || !name->is_string()) {
            return bad(tw + ".function.name: expected a string, got " +
                       (name == nullptr ? std::string("nothing")
                                        : std::string(chat::json_type_name(name->type))));
        }
        call.name             = name->text;
        const JsonValue * arg = fn->find("arguments");
        if (arg == nullptr) {
            return bad(tw + ".function.arguments: missing");
        }
        if (arg->is_string()) {
            call.arguments = arg->text;
        } else {
            call.arguments          = chat::dump_json(*arg);
            call.arguments_is_value = true;
        }
        out.tool_calls.push_back(std::move(call));
    }
    return Status();
}

Status parse_tools(const JsonValue * v, const std::string & w, std::vector<std::string> & out) {
    out.clear();
    if (v == nullptr || !v->truthy()) {
        return Status();
    }
    if (!v->is_array()) {
        return wrong_type(w, "a list of tools", *v);
    }
    for (size_t i = 0; i < v->items.size(); ++i) {
        if (!v->items[i].is_object()) {
            return wrong_type(w + "[" + std::to_string(i) + "]", "an object (a tool)", v->items[i]);
        }
        out.push_back(chat::dump_json(v->items[i]));
    }
    return Status();
}

Status parse_message(const JsonValue & msg, const std::string & where, ChatMessage & out) {
    if (!msg.is_object()) {
        return wrong_type(where, "an object (a message)", msg);
    }
    DSV4_CHAT_TRY(opt_string(msg, "role", where, out.role));
    DSV4_CHAT_TRY(parse_content(msg, out.role, where, out));
    DSV4_CHAT_TRY(opt_string(msg, "reasoning_content", where, out.reasoning_content));
    DSV4_CHAT_TRY(parse_tool_calls(msg, where, out));
    DSV4_CHAT_TRY(opt_string(msg, "tool_call_id", where, out.tool_call_id));
    DSV4_CHAT_TRY(parse_tools(msg.find("tools"), where + ".tools", out.tools));
    if (const JsonValue * rf = msg.find("response_format"); rf != nullptr && rf->truthy()) {
        out.response_format = chat::dump_json(*rf);
    }
    if (const JsonValue * task = msg.find("task"); task != nullptr && !task->is_null()) {
        if (!task->is_string()) {
            return wrong_type(where + ".task", "a string or null", *task);
        }
        out.task = task->text;
    }
    if (const JsonValue * wo = msg.find("wo_eos"); wo != nullptr) {
        out.wo_eos = wo->truthy();
    }
    return Status();
}

}  // namespace

Result<std::vector<ChatMessage>> messages_from_json(std::string_view json) {
    auto root = chat::parse_json(json, "messages JSON");
    if (!root.ok()) {
        return root.status();
    }
    const JsonValue * list  = &root.value();
    const JsonValue * tools = nullptr;
    std::string       base  = "messages";
    if (list->is_object()) {
        tools = list->find("tools");
        list  = list->find("messages");
        if (list == nullptr) {
            return bad("messages JSON: an object needs a \"messages\" list");
        }
    }
    if (!list->is_array()) {
        return wrong_type("messages JSON", "a list of messages (or {\"messages\": [...]})", *list);
    }
    std::vector<ChatMessage> out(list->items.size());
    for (size_t i = 0; i < list->items.size(); ++i) {
        DSV4_CHAT_TRY(parse_message(list->items[i], base + "[" + std::to_string(i) + "]", out[i]));
    }
    if (tools != nullptr) {
        // {"tools": [...], "messages": [...]}: the tools belong to the first message.
        if (out.empty()) {
            return bad("messages JSON: \"tools\" given but \"messages\" is empty");
        }
        DSV4_CHAT_TRY(parse_tools(tools, "tools", out[0].tools));
    }
    return out;
}

}  // namespace dsv4
