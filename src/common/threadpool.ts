/**
 * Imported first by every server entry point. Node's libuv pool has 4 threads by
 * default, and each fsync holds one for its whole duration: with a few dozen writes in
 * flight, four threads turn concurrent fsyncs into a queue. Must run before the pool is
 * first used (it starts lazily), hence its own module at the top of the imports.
 */
process.env.UV_THREADPOOL_SIZE ??= '32';
