package control

// project keeps, recursively, only the members that shapeName defines, so that responses carry
// exactly the fields of the service model's output shapes (stored inputs may hold members a newer
// client sent, or members such as Tags that Describe does not echo).
func (m *serviceModel) project(shapeName string, v any) any {
	s := m.Shapes[shapeName]
	if s == nil || v == nil {
		return v
	}
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(s.Members))
		for _, mem := range s.Members {
			if val, ok := obj[mem.Name]; ok && val != nil {
				out[mem.Name] = m.project(mem.Shape, val)
			}
		}
		return out
	case "list":
		arr, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(arr))
		for i, item := range arr {
			out[i] = m.project(s.Member, item)
		}
		return out
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(obj))
		for k, val := range obj {
			out[k] = m.project(s.Value, val)
		}
		return out
	}
	return v
}

// output projects a response document onto op's output shape.
func (c *Control) output(op string, v map[string]any) map[string]any {
	out, _ := c.model.project(c.model.Operations[op].Output, v).(map[string]any)
	return out
}

// copyMap is a shallow copy, for building a response from a stored input.
func copyMap(in map[string]any) map[string]any {
	out := make(map[string]any, len(in)+8)
	for k, v := range in {
		out[k] = v
	}
	return out
}
