package privacy

// givenNames are common given names, lower case (see commonGivenName).
var givenNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		"james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
		"david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen",
		"christopher", "nancy", "daniel", "lisa", "matthew", "betty", "anthony", "margaret", "mark", "sandra",
		"donald", "ashley", "steven", "kimberly", "paul", "emily", "andrew", "donna", "joshua", "michelle",
		"kenneth", "dorothy", "kevin", "carol", "brian", "amanda", "george", "melissa", "edward", "deborah",
		"ronald", "stephanie", "timothy", "rebecca", "jason", "sharon", "jeffrey", "laura", "ryan", "cynthia",
		"jacob", "kathleen", "gary", "amy", "nicholas", "shirley", "eric", "angela", "jonathan", "helen",
		"stephen", "anna", "larry", "brenda", "justin", "pamela", "scott", "nicole", "brandon", "emma",
		"benjamin", "samantha", "samuel", "katherine", "gregory", "christine", "frank", "debra", "alexander", "rachel",
		"raymond", "catherine", "patrick", "carolyn", "jack", "janet", "dennis", "ruth", "jerry", "maria",
		"tyler", "heather", "aaron", "diane", "jose", "virginia", "adam", "julie", "henry", "joyce",
		"nathan", "victoria", "douglas", "olivia", "zachary", "kelly", "peter", "christina", "kyle", "lauren",
		"oliver", "amelia", "harry", "isla", "noah", "ava", "leo", "mia", "liam", "sophia",
		"lucas", "isabella", "ethan", "charlotte", "mason", "harper", "logan", "evelyn", "elijah", "abigail",
		"muhammad", "mohammed", "ahmed", "ali", "fatima", "aisha", "wei", "li", "yan", "hiroshi",
		"carlos", "juan", "luis", "ana", "sofia", "pierre", "marie", "hans", "anna-lena", "giulia",
		"alice", "bob", "claire", "grace", "chloe", "lucy", "sophie", "ella", "jane", "tom",
	} {
		m[n] = true
	}
	return m
}()
