# Shared by tests/hcs (Linux) and tests/windows (the mingw test exe): the
# platform-neutral HCS test sources, and the golden documents embedding.
set(UVMSHIM_HCS_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
set(UVMSHIM_HCS_TEST_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/fake_hcs_api.cc
  ${CMAKE_CURRENT_LIST_DIR}/guid_hvsocket_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/hresult_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/hcs_document_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/hcs_call_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/hcs_vm_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/stream_relay_test.cc
)

# Embeds tests/hcs/golden/*.json into a generated source (golden_data.cc)
# for the Linux tests and the Windows test exe alike. Reconfigures when a
# golden file changes.
function(uvmshim_hcs_embed_goldens OUT_SOURCE)
  set(_dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/golden)
  file(GLOB _files CONFIGURE_DEPENDS ${_dir}/*.json)
  set(UVMSHIM_HCS_GOLDEN_ENTRIES "")
  foreach(_file ${_files})
    get_filename_component(_name ${_file} NAME_WE)
    file(READ ${_file} _content)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_file})
    string(APPEND UVMSHIM_HCS_GOLDEN_ENTRIES
           "      {\"${_name}\", R\"uvmshim_golden(${_content})uvmshim_golden\"},\n")
  endforeach()
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/golden_data.cc)
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/golden_data.cc.in ${_out} @ONLY)
  set(${OUT_SOURCE} ${_out} PARENT_SCOPE)
endfunction()
