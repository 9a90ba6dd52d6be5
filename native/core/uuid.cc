#include "uuid.h"

namespace bv::core {

void uuid_format(const uint8_t* uuid, char* text) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t at = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text[at++] = '-';
    text[at++] = kHex[uuid[i] >> 4];
    text[at++] = kHex[uuid[i] & 15];
  }
}

bool uuid_is_nil(const uint8_t* uuid) {
  for (size_t i = 0; i < 16; i++) {
    if (uuid[i] != 0) return false;
  }
  return true;
}

std::string uuid_string(const std::array<uint8_t, 16>& uuid) {
  std::string text(kUuidTextSize, '\0');
  uuid_format(uuid.data(), text.data());
  return text;
}

}  // namespace bv::core
