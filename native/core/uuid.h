// The one text form of a UUID: 8-4-4-4-12 lowercase hex (36 characters).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace bv::core {

/** Characters of a UUID's text form. */
constexpr size_t kUuidTextSize = 36;

/** uuid_format() - the 16 bytes at @uuid as 8-4-4-4-12 lowercase hex: 36 characters at @text, no NUL. */
void uuid_format(const uint8_t* uuid, char* text);

/** uuid_is_nil() - whether the 16 bytes at @uuid are all zero (a UUID never set). */
bool uuid_is_nil(const uint8_t* uuid);

/** uuid_string() - uuid_format() as a string ("01234567-89ab-..."; the nil UUID too). */
std::string uuid_string(const std::array<uint8_t, 16>& uuid);

}  // namespace bv::core
