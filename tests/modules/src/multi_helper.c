unsigned long multi_helper(unsigned long x)
{
	return 2 * x;
}
