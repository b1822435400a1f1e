{
  'variables': {
    # 1 adds ASan/UBSan to the Debug configuration (scripts/build.mjs --debug --sanitize).
    'sanitize%': 0,
  },
  'targets': [
    {
      'target_name': 'sluice_native',
      'sources': [
        'src/addon.cc',
        'src/aes.cc',
        'src/anonymous_file.cc',
        'src/cipher_context.cc',
        'src/decrypt_chunk.cc',
        'src/decrypt_file.cc',
        'src/encrypt_file.cc',
        'src/errors.cc',
        'src/file_copy.cc',
        'src/fs_util.cc',
        'src/sha256.cc',
        'src/thread_pool.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NAPI_CPP_EXCEPTIONS',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17', '-std=gnu++20'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-frtti'],
      'cflags': ['-fvisibility=hidden', '-Wall', '-Wextra', '-pthread'],
      'ldflags': ['-pthread'],
      'configurations': {
        'Release': {
          'cflags': ['-O3'],
        },
        'Debug': {
          'cflags': ['-g', '-O1'],
          'conditions': [
            ['sanitize==1', {
              'cflags': ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all'],
              'ldflags': ['-fsanitize=address,undefined'],
            }],
          ],
        },
      },
    },
  ],
}
