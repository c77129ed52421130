# Compiles the tuning tables of this folder (*.txt, format in README.md) into the library: fills
# tables.c.in into ${CMAKE_BINARY_DIR}/tuning_tables.c with each file as a string, and re-runs when a
# table changes.
file(GLOB _topk_tables CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.txt)
list(SORT _topk_tables)
set(_topk_entries "")
foreach(_table IN LISTS _topk_tables)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_table})
  file(READ ${_table} _text)
  string(REPLACE "\\" "\\\\" _text "${_text}")
  string(REPLACE "\"" "\\\"" _text "${_text}")
  string(REPLACE "\n" "\\n\"\n     \"" _text "${_text}")
  get_filename_component(_name ${_table} NAME)
  string(APPEND _topk_entries "    {\"tuning/${_name}\",\n     \"${_text}\"},\n")
endforeach()
set(TOPK_TUNING_ENTRIES "${_topk_entries}")
set(TOPK_TUNING_TABLES_C ${CMAKE_BINARY_DIR}/tuning_tables.c)
configure_file(${CMAKE_CURRENT_LIST_DIR}/tables.c.in ${TOPK_TUNING_TABLES_C} @ONLY) # rewritten only on a change
