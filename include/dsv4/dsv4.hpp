// Umbrella header: the only include a host program needs.
#pragma once

#include "dsv4/chat.hpp"
#include "dsv4/export.hpp"
#include "dsv4/generate.hpp"
#include "dsv4/log.hpp"
#include "dsv4/model.hpp"
#include "dsv4/status.hpp"
#include "dsv4/system.hpp"
#include "dsv4/tokenizer.hpp"
#include "dsv4/version.hpp"
