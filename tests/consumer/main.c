/* Looks a row up through the installed C ABI; exits non-zero on a wrong answer. */
#include <embedkit/c_api.h>

#include <stdio.h>

int main(void) {
  ek_table* table = NULL;
  if (ek_table_create("{\"input_dim\": 3, \"output_dim\": 2}", &table) != EK_OK) {
    fprintf(stderr, "create failed: %s\n", ek_last_error());
    return 1;
  }
  float w[6] = {0, 0, 2, 2, 3, 3};
  int64_t w_shape[2] = {3, 2};
  DLTensor weights = {w, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, w_shape, NULL, 0};
  int64_t ids[3] = {2, 1, 0};
  int64_t ids_shape[1] = {3};
  DLTensor indices = {ids, {kDLCPU, 0}, 1, {kDLInt, 64, 1}, ids_shape, NULL, 0};
  float o[6] = {0};
  int64_t o_shape[2] = {3, 2};
  DLTensor out = {o, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, o_shape, NULL, 0};
  int ok = ek_set_weights(table, &weights) == EK_OK && ek_lookup(table, &indices, &out) == EK_OK && o[0] == 3 &&
           o[2] == 2 && o[4] == 0;
  printf("consumer_c: embedkit %s lookup %s\n", ek_version(), ok ? "ok" : "WRONG");
  ek_table_destroy(table);
  return ok ? 0 : 1;
}
